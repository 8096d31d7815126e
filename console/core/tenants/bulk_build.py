"""Bulk provisioning's build step: each tenant's schema (cloned from the template, or by
alembic), grants, initial data, access check and the audit rows of those steps in ONE message
that runs as one transaction on a worker connection (see :mod:`console.core.tenants.bulk`).

The run's constants (actor, step details) reach the per-tenant message as a bind parameter,
through one session setting per worker connection (``goconsole.provision``); the message itself
holds only the template DDL, quoted identifiers and uuids.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import asyncpg

from console.core.audit import AUDIT_INSERT, AuditLog, audit_row
from console.core.errors import ConsoleError, OperationFailed
from console.core.events import Phase
from console.core.identifiers import dollar_quoted, qualified
from console.core.migrations.tree import VERSION_TABLE, AlembicRunner, head_revision
from console.core.operations import describe_error
from console.core.tenants.bulk_report import OPERATION, BulkRun
from console.core.tenants.registry import Tenant
from console.core.tenants.schema import (
    ACCESS_BREACH_SQLSTATE,
    INITIAL_CATEGORIES,
    access_check_plpgsql,
    grant_statements,
    table_names,
    verify_details,
)
from console.core.tenants.template import TemplateDDL, TemplateSchema

# Session setting on each worker holding the run's constants (JSON) for the per-tenant message.
CONTEXT_SETTING = "goconsole.provision"
_STEP_HINT = "goconsole step: "
# A build's commit does not wait for its WAL to reach disk: the batch's activate statement,
# committed normally, flushes the WAL up to its own commit, builds included, before any of them
# is ACTIVE; a crash before that leaves the tenant INITIALIZING, with or without its schema,
# which the next run finishes. Saves a flush wait per tenant.
_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit = off;"
_CONTEXT_ACTOR = ("ctx->>'user'", "ctx->>'host'", "ctx->>'address'")


def elapsed_ms(since: str) -> str:
    """SQL for the milliseconds since ``since`` (a SQL timestamp expression), to 0.1 ms."""
    return f"round((extract(epoch FROM clock_timestamp() - {since}) * 1000)::numeric, 1)"


@dataclass(frozen=True)
class BuildPlan:
    """How a batch builds its schemas: the template's DDL, or alembic (``ddl`` None)."""

    ddl: TemplateDDL | None
    schema_details: dict[str, Any]


@dataclass(frozen=True)
class BuildFailure:
    tenant: Tenant
    step: str
    error: str


@dataclass
class Worker:
    """A worker connection and the run constants its session setting holds."""

    conn: asyncpg.Connection
    context: str | None = None

    async def use(self, context: str) -> None:
        """Put ``context`` in the session setting the per-tenant messages read."""
        if context != self.context:
            await self.conn.execute("SELECT set_config($1, $2, false)", CONTEXT_SETTING, context)
            self.context = context


class SchemaBuilder:
    """Builds registered tenants over worker connections, one message each."""

    def __init__(
        self, template: TemplateSchema, alembic: AlembicRunner, app_role: str, audit: AuditLog
    ) -> None:
        self._template = template
        self._alembic = alembic
        self._app_role = app_role
        self._audit = audit

    async def plan(self, conn: asyncpg.Connection, use_template: bool, run: BulkRun) -> BuildPlan:
        """Clone the template when it is at head, else alembic (as ``Provisioner._build_schema``
        does)."""
        ddl = await self._template.ddl(conn) if use_template else "alembic path requested"
        if isinstance(ddl, TemplateDDL):
            return BuildPlan(ddl, {"method": "clone", "revision": ddl.revision})
        if use_template:
            run.event(None, "schema", Phase.INFO, f"falling back to alembic: {ddl}")
        return BuildPlan(
            None, {"method": "alembic", "revision": head_revision("tenant"), "reason": ddl}
        )

    async def build(
        self, workers: list[Worker], tenants: list[Tenant], plan: BuildPlan, run: BulkRun
    ) -> tuple[list[Tenant], list[BuildFailure]]:
        """Build ``tenants`` over the workers; returns the built ones and the failures. A
        worker whose connection is lost stops; the others go on."""
        actor = self._audit.actor
        context = json.dumps(
            {
                "user": actor.user,
                "host": actor.host,
                "address": actor.address,
                "schema": plan.schema_details,
                "verify": verify_details(self._app_role),
                "categories": list(INITIAL_CATEGORIES),
            }
        )
        queue = deque(tenants)
        built: list[Tenant] = []
        failures: list[BuildFailure] = []

        async def work(worker: Worker) -> None:
            await worker.use(context)
            while queue:
                tenant = queue.popleft()
                try:
                    tables = await self._build_one(worker.conn, tenant, plan)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConsoleError) as e:
                    failures.append(BuildFailure(tenant, *_failure(e)))
                    if worker.conn.is_closed():
                        return
                    continue
                built.append(tenant)
                self._built_events(run, tenant, plan, tables)

        await asyncio.gather(*(work(worker) for worker in workers))
        lost = "not built: the worker connections were lost"
        failures += [BuildFailure(tenant, "schema", lost) for tenant in queue]
        return built, failures

    async def _build_one(self, conn: asyncpg.Connection, tenant: Tenant, plan: BuildPlan) -> int:
        """One tenant's schema, grants, initial data and verification, with the audit rows of
        those steps, in one transaction (after alembic, when there is no usable template);
        returns the number of tables granted."""
        if plan.ddl is not None:
            ddl = plan.ddl.for_tenant(tenant.schema_name, tenant.id)
            finish = self._finish(tenant, plan.ddl.tables, None)
            await conn.execute(f"{_NO_FLUSH_WAIT}\n{ddl}\n{finish}")
            return len(plan.ddl.tables)
        started = time.perf_counter()
        try:
            await asyncio.to_thread(
                self._alembic.upgrade_tenant, tenant.schema_name, str(tenant.id)
            )
        except Exception as exc:  # alembic raises many types (SQLAlchemy, psycopg)
            raise OperationFailed(describe_error(exc)) from exc
        schema_ms = (time.perf_counter() - started) * 1000
        tables = await table_names(conn, tenant.schema_name)
        await conn.execute(self._finish(tenant, tables, schema_ms))
        return len(tables)

    def _finish(self, tenant: Tenant, tables: list[str], schema_ms: float | None) -> str:
        """The DO block that completes a build inside its transaction: the version row (for a
        clone, ``schema_ms`` None: the schema step then lasted since the message arrived), the
        grants, the initial data, the access check, and the audit rows of the schema, init_data
        and verify steps. An error re-raised from it carries its step in the HINT."""
        schema, tenant_id = tenant.schema_name, tenant.id
        stamp = (
            f"INSERT INTO {qualified(schema, VERSION_TABLE)} (version_num) "
            "VALUES (ctx->'schema'->>'revision');"
            if schema_ms is None
            else ""
        )
        grants = ";\n    ".join(grant_statements(schema, self._app_role, tables))
        schema_duration = (
            elapsed_ms("statement_timestamp()") if schema_ms is None else f"{schema_ms:.1f}"
        )
        categories = qualified(schema, "categories")
        granted = f"jsonb_build_object('tables_granted', {len(tables)})"
        audit = _audit_rows(
            tenant_id,
            [
                ("schema", "ctx->'schema'", "schema_ms"),
                ("init_data", granted, "init_ms"),
                ("verify", "ctx->'verify'", elapsed_ms("mark")),
            ],
        )
        body = f"""DECLARE
    ctx constant jsonb := current_setting('{CONTEXT_SETTING}')::jsonb;
    step text := 'schema';
    mark timestamptz;
    schema_ms numeric;
    init_ms numeric;
    failed_state text;
    failed_message text;
    failed_detail text;
BEGIN
    {stamp}
    schema_ms := {schema_duration};
    step := 'init_data';
    mark := clock_timestamp();
    {grants};
    PERFORM set_config('app.current_tenant_id', '{tenant_id}', true);
    INSERT INTO {categories} (name)
        SELECT jsonb_array_elements_text(ctx->'categories') ON CONFLICT (name) DO NOTHING;
    init_ms := {elapsed_ms("mark")};
    step := 'verify';
    mark := clock_timestamp();
    {access_check_plpgsql(schema, tenant_id, self._app_role)}
    {audit}
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT,
        failed_detail = PG_EXCEPTION_DETAIL;
    RAISE EXCEPTION USING ERRCODE = failed_state, MESSAGE = failed_message,
        DETAIL = coalesce(failed_detail, ''), HINT = '{_STEP_HINT}' || step;
END"""
        return f"DO {dollar_quoted(body)};"

    def _built_events(self, run: BulkRun, tenant: Tenant, plan: BuildPlan, tables: int) -> None:
        """DONE events of a built tenant's schema, init_data and verify steps."""
        key = tenant.key
        run.event(
            key,
            "schema",
            Phase.DONE,
            f"building schema {tenant.schema_name}",
            details=plan.schema_details,
        )
        run.event(
            key,
            "init_data",
            Phase.DONE,
            "granting access and seeding initial data",
            details={"tables_granted": tables},
        )
        run.event(
            key,
            "verify",
            Phase.DONE,
            f"verifying access as {self._app_role}",
            details=verify_details(self._app_role),
        )


def _audit_rows(tenant_id: uuid.UUID, steps: list[tuple[str, str, str]]) -> str:
    """PL/pgSQL: the audit rows of ``steps`` (step, details, duration: SQL expressions) by the
    actor in ``ctx``, in one INSERT."""
    rows = ",\n        ".join(
        "("
        + audit_row(
            f"'{tenant_id}'",
            f"'{OPERATION}.{step}'",
            _CONTEXT_ACTOR,
            f"{details} || jsonb_build_object('duration_ms', {duration})",
        )
        + ")"
        for step, details, duration in steps
    )
    return f"{AUDIT_INSERT} VALUES\n        {rows};"


def _failure(exc: BaseException) -> tuple[str, str]:
    """(step, one-line error) of a failed build: the step from the HINT the build's DO block
    adds, else ``schema`` (the DDL, alembic, or a lost connection)."""
    if isinstance(exc, asyncpg.PostgresError):
        hint = getattr(exc, "hint", None) or ""
        step = hint.removeprefix(_STEP_HINT) if hint.startswith(_STEP_HINT) else "schema"
        if exc.sqlstate == ACCESS_BREACH_SQLSTATE:
            return step, str(exc).splitlines()[0]
        return step, describe_error(exc)
    if isinstance(exc, asyncpg.InterfaceError | OSError):
        return "schema", f"connection lost: {describe_error(exc)}"
    return "schema", describe_error(exc)
