"""``goconsole init``: control schema, application role, template schema. Safe to rerun."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from console.core.db import Database
from console.core.errors import InvalidState
from console.core.events import EventSink
from console.core.identifiers import quote_ident
from console.core.operations import OperationRunner
from console.core.schema_tree import AlembicRunner, head_revision
from console.core.template import TemplateSchema


async def initialize(
    db: Database,
    runner: OperationRunner,
    alembic: AlembicRunner,
    template: TemplateSchema,
    app_role: str,
    sink: EventSink,
) -> dict[str, Any]:
    """Apply the control tree, create or verify the app role, build the template at head."""
    report: dict[str, Any] = {}
    async with runner.run("init", None, sink) as op:
        async with op.step("control_schema", "applying the control migration tree") as step:
            await asyncio.to_thread(alembic.upgrade_control)
            step.details["revision"] = report["control_revision"] = head_revision("control")
        async with op.step("app_role", f"creating or verifying role {app_role}") as step:
            async with db.acquire() as conn, conn.transaction():
                step.details["role"] = report["app_role"] = await _ensure_role(conn, app_role)
        async with op.step("template", "building the tenant template schema") as step:
            async with db.acquire() as conn:
                step.details["revision"] = await template.ensure(conn)
            report["template_revision"] = step.details["revision"]
    return report


async def _ensure_role(conn: asyncpg.Connection, role: str) -> str:
    row = await conn.fetchrow(
        "SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", role
    )
    quoted = quote_ident(role)
    if row is None:
        await conn.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOBYPASSRLS")
        outcome = "created"
    else:
        wrong = [
            text
            for flag, text in (
                (not row["rolcanlogin"], "cannot LOGIN"),
                (row["rolbypassrls"], "has BYPASSRLS"),
                (row["rolsuper"], "is a superuser"),
            )
            if flag
        ]
        if wrong:
            raise InvalidState(
                f"application role {role!r} {' and '.join(wrong)}; it must be LOGIN, "
                f"NOSUPERUSER, NOBYPASSRLS (fix with ALTER ROLE {quoted} ...)"
            )
        outcome = "verified"
    await conn.execute(
        f"GRANT USAGE ON SCHEMA public TO {quoted};"
        f"GRANT SELECT ON public.tenants TO {quoted};"
        f"GRANT SELECT, INSERT ON public.tenant_audit_log TO {quoted}"
    )
    if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        # Lets the console SET ROLE to the app role when verifying tenant access.
        await conn.execute(f"GRANT {quoted} TO current_user")
    return outcome
