"""``goconsole init``: control schema, application role and its privileges, template schema.
Safe to rerun: a rerun also tightens what an older version granted the application role."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from console.core.db import Database
from console.core.errors import InvalidState
from console.core.events import EventSink
from console.core.identifiers import quote_ident
from console.core.migrations.tree import AlembicRunner, head_revision
from console.core.operations import OperationRunner
from console.core.security.tighten import tighten_control_schema
from console.core.tenants.template import TemplateSchema


@dataclass(frozen=True)
class InitReport:
    """What ``init`` left: the control tree's and the template's revisions, whether the
    application role was ``created`` or ``verified``, and what changed in its privileges (one
    line each; empty when nothing did)."""

    control_revision: str
    app_role: str
    privilege_changes: list[str]
    template_revision: str


async def initialize(
    db: Database,
    runner: OperationRunner,
    alembic: AlembicRunner,
    template: TemplateSchema,
    app_role: str,
    public_fields: Sequence[str],
    sink: EventSink,
) -> InitReport:
    """Apply the control tree, create or verify the app role, reduce its privileges in the
    control schema to the registry interface, build the template at head."""
    async with runner.run("init", None, sink) as op:
        async with op.step("control_schema", "applying the control migration tree") as step:
            await asyncio.to_thread(alembic.upgrade_control)
            step.details["revision"] = control = head_revision("control")
        async with op.step("app_role", f"creating or verifying role {app_role}") as step:
            async with db.acquire() as conn, conn.transaction():
                step.details["role"] = role = await _ensure_role(conn, app_role)
        async with op.step("privileges", f"limiting {app_role} to the registry interface") as step:
            async with db.acquire() as conn, conn.transaction():
                changes = await tighten_control_schema(conn, app_role, public_fields)
            step.details["changes"] = changes
        async with op.step("template", "building the tenant template schema") as step:
            async with db.acquire() as conn:
                step.details["revision"] = revision = await template.ensure(conn)
    return InitReport(control, role, changes, revision)


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
    if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        # Lets the console SET ROLE to the app role when verifying tenant access.
        await conn.execute(f"GRANT {quoted} TO current_user")
    return outcome
