"""Bulk provisioning: many tenants with a few statements per batch and ONE message per tenant.

The guarantees are those of :meth:`Lifecycle.provision`; only the round trips differ. Per batch
of up to ``BATCH_SIZE`` keys, on one connection held for the whole run:

1. lock — every key's advisory lock (OperationRunner's class and key) in one statement; a key
   whose lock another operation holds is reported busy, naming the holder;
2. sort — the registry rows and schemas of the locked keys in one statement: a key in use is a
   per-tenant error; a key an earlier run left INITIALIZING or FAILED, or whose schema exists
   already, is finished after the batches by the single-tenant path (``Lifecycle.provision``);
3. register — the new keys as INITIALIZING, with their ``provision.register`` audit rows, in
   one statement;
4. build — each tenant on one of ``concurrency`` worker connections, in ONE message that runs
   as one transaction, all or nothing: the template's DDL and version row (alembic first when
   the template is missing or stale), the grants, the initial data, the access check as the
   application role (rolled back), and the ``schema``, ``init_data`` and ``verify`` audit rows
   with the actor and each step's duration; an error names its step;
5. pool — when PgBouncer is managed, the built tenants' aliases in one include-file edit and one
   RELOAD, and their ``pool`` audit rows in one statement;
6. activate — ACTIVE and the ``activate`` audit rows in one statement;
7. failures — FAILED and ``provision.failed`` (step, error) for the tenants that failed;
8. unlock — every lock of the batch in one statement.

The run's constants (actor, step details) reach the per-tenant message as a bind parameter,
through one session setting per worker connection (``goconsole.provision``); the message itself
holds only the template DDL, quoted identifiers and uuids.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console.core import locks
from console.core.audit import AUDIT_INSERT, audit_row
from console.core.db import Database
from console.core.errors import (
    ConsoleError,
    InvalidInput,
    OperationFailed,
    TenantBusy,
)
from console.core.events import EventSink, Phase, StepEvent
from console.core.identifiers import dollar_quoted, qualified, schema_for, validate_tenant_key
from console.core.migrations.tree import VERSION_TABLE, AlembicRunner, head_revision
from console.core.operations import OperationRunner, describe_error, max_workers
from console.core.pools.service import POOL_STEPS_SKIPPED, PoolService
from console.core.states import RESUMABLE
from console.core.tenants.registry import Tenant, TenantStatus, display_name_for
from console.core.tenants.schema import (
    ACCESS_BREACH_SQLSTATE,
    INITIAL_CATEGORIES,
    access_check_plpgsql,
    grant_statements,
    table_names,
    verify_details,
)
from console.core.tenants.template import TemplateDDL, TemplateSchema

# Keys per batch: the batch's fixed statements (lock, sort, template check, register, activate,
# unlock: ~7 round trips) cost under 0.1 round trip per tenant at 100, and the workers wait for
# the batch's slowest build once per batch; a crash leaves at most this many tenants INITIALIZING
# (the next run finishes them), and a tenant is ACTIVE at most one batch (~1 s) after its build.
BATCH_SIZE = 100
# Connections the bulk path holds besides its workers: the one for locks and registry statements.
HELD_CONNECTIONS = 1
# Session setting on each worker holding the run's constants (JSON) for the per-tenant message.
CONTEXT_SETTING = "goconsole.provision"
_STEP_HINT = "goconsole step: "
# A build's commit does not wait for its WAL to reach disk: the batch's activate statement,
# committed normally, flushes the WAL up to its own commit, builds included, before any of them
# is ACTIVE; a crash before that leaves the tenant INITIALIZING, with or without its schema,
# which the next run finishes. Saves a flush wait per tenant.
_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit = off;"
_OPERATION = "provision"

SingleProvision = Callable[[str, str | None, EventSink, bool], Awaitable[Tenant]]


def _elapsed_ms(since: str) -> str:
    """SQL for the milliseconds since ``since`` (a SQL timestamp expression), to 0.1 ms."""
    return f"round((extract(epoch FROM clock_timestamp() - {since}) * 1000)::numeric, 1)"


_REGISTER_DETAILS = (
    "jsonb_build_object('schema', schema_name, 'display_name', display_name, "
    f"'duration_ms', {_elapsed_ms('statement_timestamp()')})"
)
_ACTIVATE_DETAILS = f"jsonb_build_object('duration_ms', {_elapsed_ms('statement_timestamp()')})"
_CONTEXT_ACTOR = ("ctx->>'user'", "ctx->>'host'", "ctx->>'address'")

_REGISTER = f"""
WITH registered AS (
    INSERT INTO public.tenants (key, schema_name, display_name, cluster)
    SELECT key, schema, name, $4
    FROM unnest($1::text[], $2::text[], $3::text[]) AS x(key, schema, name)
    ON CONFLICT DO NOTHING
    RETURNING *
), audited AS (
    {AUDIT_INSERT}
    SELECT {audit_row("id", "'provision.register'", ("$5", "$6", "$7"), _REGISTER_DETAILS)}
    FROM registered
)
SELECT * FROM registered
"""

_ACTIVATE = f"""
WITH activated AS (
    UPDATE public.tenants SET status = 'ACTIVE'
    WHERE id = ANY($1::uuid[]) AND status = 'INITIALIZING'
    RETURNING *
), audited AS (
    {AUDIT_INSERT}
    SELECT {audit_row("id", "'provision.activate'", ("$2", "$3", "$4"), _ACTIVATE_DETAILS)}
    FROM activated
)
SELECT * FROM activated
"""


@dataclass(frozen=True)
class TenantOutcome:
    """How one requested key ended: ``active``, ``failed`` or ``busy`` (with step and error);
    ``resumed`` when the single-tenant path finished it (left by an earlier run, or its schema
    existed already)."""

    key: str
    result: str
    step: str | None = None
    error: str | None = None
    tenant: Tenant | None = None
    resumed: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "key": self.key,
            "result": self.result,
            "step": self.step,
            "error": self.error,
            "id": str(self.tenant.id) if self.tenant else None,
            "resumed": self.resumed,
        }


@dataclass
class BulkReport:
    """Counts while a bulk provision runs (sent to its progress callback after every tenant),
    then every key's outcome."""

    keys: list[str]
    outcomes: dict[str, TenantOutcome] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    skipped: int = 0  # busy: another operation held the tenant's lock (reported as failed-busy)
    started: float = field(default_factory=time.perf_counter)
    elapsed_s: float | None = None  # set when the run is over

    @property
    def total(self) -> int:
        """Keys requested."""
        return len(self.keys)

    @property
    def remaining(self) -> int:
        """Keys without an outcome yet."""
        return self.total - self.done - self.failed - self.skipped

    @property
    def rate(self) -> float:
        """Tenants finished (either way) per second."""
        elapsed = (
            self.elapsed_s if self.elapsed_s is not None else time.perf_counter() - self.started
        )
        return (self.total - self.remaining) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate."""
        return self.remaining / self.rate if self.rate > 0 else None

    def record(self, outcome: TenantOutcome) -> None:
        """Count one key's outcome."""
        self.outcomes[outcome.key] = outcome
        if outcome.result == "active":
            self.done += 1
        elif outcome.result == "busy":
            self.skipped += 1
        else:
            self.failed += 1

    def unsuccessful(self) -> list[TenantOutcome]:
        """Outcomes other than ACTIVE, in request order."""
        return [o for k in self.keys if (o := self.outcomes[k]).result != "active"]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready summary, every key in request order."""
        return {
            "total": self.total,
            "succeeded": self.done,
            "failed": self.failed,
            "skipped_busy": self.skipped,
            "elapsed_s": round(self.elapsed_s or 0.0, 3),
            "tenants_per_s": round(self.rate, 1),
            "tenants": [self.outcomes[k].as_json() for k in self.keys if k in self.outcomes],
        }


BulkProgress = Callable[[BulkReport], None]


def _no_progress(_report: BulkReport) -> None:
    """A BulkProgress that ignores everything."""


def check_request(
    keys: Sequence[str], names: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(key, display name) of every requested key, in order; InvalidInput, before any SQL, when
    there is none, a key is invalid or repeated, or a display name is wrong."""
    if not keys:
        raise InvalidInput("no tenant key given: name one or more keys (or --from-file FILE)")
    for key in keys:
        validate_tenant_key(key)
    repeated = sorted(k for k, n in Counter(keys).items() if n > 1)
    if repeated:
        raise InvalidInput(
            f"tenant key(s) given more than once: {_listing(repeated)}; each key may appear once"
        )
    given = names or {}
    stray = sorted(set(given) - set(keys))
    if stray:
        raise InvalidInput(f"display name(s) given for key(s) not requested: {_listing(stray)}")
    return [(key, display_name_for(key, given.get(key))) for key in keys]


def check_concurrency(concurrency: int, pool_size: int) -> None:
    """InvalidInput unless the console's pool (``pool_size`` connections) can serve
    ``concurrency`` workers besides the connection(s) the bulk path holds."""
    workers = max_workers(pool_size, HELD_CONNECTIONS)
    if not 1 <= concurrency <= workers:
        raise InvalidInput(
            f"--concurrency {concurrency} is out of range 1-{workers}: bulk provisioning holds "
            f"{HELD_CONNECTIONS} connection for its locks plus one per concurrent tenant, and the "
            f"console's pool has {pool_size} (pool_max_size of the cluster; raise it for more)"
        )


def _listing(items: list[str], shown: int = 10) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


@dataclass(frozen=True)
class _Plan:
    """How a batch builds its schemas: the template's DDL, or alembic (``ddl`` None)."""

    ddl: TemplateDDL | None
    schema_details: dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    tenant: Tenant
    step: str
    error: str


@dataclass
class _Worker:
    """A worker connection and the run constants its session setting holds."""

    conn: asyncpg.Connection
    context: str | None = None

    async def use(self, context: str) -> None:
        """Put ``context`` in the session setting the per-tenant messages read."""
        if context != self.context:
            await self.conn.execute("SELECT set_config($1, $2, false)", CONTEXT_SETTING, context)
            self.context = context


@dataclass
class _Run:
    """The report, the event sink and the progress callback of one run."""

    report: BulkReport
    sink: EventSink
    progress: BulkProgress

    def event(
        self, key: str | None, step: str, phase: Phase, message: str = "", **extra: Any
    ) -> None:
        """Send one event."""
        self.sink(StepEvent(_OPERATION, key, step, phase, message, **extra))

    def succeeded(self, tenant: Tenant, resumed: bool = False) -> None:
        """``tenant`` is ACTIVE."""
        self.report.record(TenantOutcome(tenant.key, "active", tenant=tenant, resumed=resumed))
        self.progress(self.report)

    def failed(
        self,
        key: str,
        step: str,
        error: str,
        *,
        tenant: Tenant | None = None,
        busy: bool = False,
        resumed: bool = False,
        announce: bool = True,
    ) -> None:
        """``key`` (registered as ``tenant``, if it got that far) failed at ``step`` or was
        busy; a FAILED event unless ``announce`` is False (the single-tenant path sent it)."""
        if announce:
            self.event(key, step, Phase.FAILED, error)
        result = "busy" if busy else "failed"
        self.report.record(TenantOutcome(key, result, step, error, tenant, resumed))
        self.progress(self.report)


class BulkProvisioner:
    """Provisions many tenants in batches (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        template: TemplateSchema,
        alembic: AlembicRunner,
        app_role: str,
        cluster: str,
        pools: PoolService | None,
        single: SingleProvision,
    ) -> None:
        self._db = db
        self._runner = runner
        self._template = template
        self._alembic = alembic
        self._app_role = app_role
        self._cluster = cluster
        self._pools = pools
        self._single = single

    async def run(
        self,
        keys: Sequence[str],
        sink: EventSink,
        use_template: bool,
        concurrency: int,
        names: Mapping[str, str] | None = None,
        progress: BulkProgress | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> BulkReport:
        """Provision ``keys``: every key validated, duplicates and read-only mode refused before
        any SQL; then batch by batch (see the module docstring). One tenant's failure never
        stops the others; the report says how each key ended."""
        requests = check_request(keys, names)
        self._runner.refuse_if_read_only(_OPERATION, " (only reads are allowed)")
        check_concurrency(concurrency, self._db.max_size)
        if batch_size < 1:
            raise InvalidInput(f"batch size must be 1 or more, got {batch_size}")
        run = _Run(BulkReport([key for key, _ in requests]), sink, progress or _no_progress)
        run.progress(run.report)
        if self._pools is None:
            run.event(None, "pool", Phase.INFO, POOL_STEPS_SKIPPED)
        leftovers: list[str] = []
        async with self._connections(concurrency) as (conn, workers):
            for start in range(0, len(requests), batch_size):
                batch = requests[start : start + batch_size]
                try:
                    leftovers += await self._batch(conn, workers, batch, use_template, run)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    raise OperationFailed(
                        f"bulk provision stopped in the batch from {batch[0][0]!r} to "
                        f"{batch[-1][0]!r} ({run.report.done} tenant(s) ACTIVE so far): "
                        f"{describe_error(exc)}; run it again to finish (tenants left "
                        "INITIALIZING are completed)"
                    ) from exc
        await self._finish_leftovers(leftovers, dict(requests), use_template, concurrency, run)
        run.report.elapsed_s = time.perf_counter() - run.report.started
        run.progress(run.report)
        return run.report

    @asynccontextmanager
    async def _connections(
        self, concurrency: int
    ) -> AsyncIterator[tuple[asyncpg.Connection, list[_Worker]]]:
        """The lock connection (showing who holds the locks, as OperationRunner's does) and
        ``concurrency`` workers; the pool's reset on release restores their settings."""
        async with AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._db.acquire())
            await conn.execute(
                "SELECT set_config('application_name', $1, false)",
                self._runner.application_name(_OPERATION),
            )
            workers = [
                _Worker(await stack.enter_async_context(self._db.acquire()))
                for _ in range(concurrency)
            ]
            yield conn, workers

    async def _batch(
        self,
        conn: asyncpg.Connection,
        workers: list[_Worker],
        requests: list[tuple[str, str]],
        use_template: bool,
        run: _Run,
    ) -> list[str]:
        """One batch, start to end; returns the keys left for the single-tenant path."""
        locked = await self._lock(conn, [key for key, _ in requests], run)
        try:
            fresh, leftovers = await self._sort(conn, [r for r in requests if r[0] in locked], run)
            tenants, conflicts = await self._register(conn, fresh, run)
            if tenants:
                plan = await self._plan(conn, use_template, run)
                built, failures = await self._build(workers, tenants, plan, run)
                if self._pools is not None and built:
                    built = await self._pool(conn, self._pools, built, failures, run)
                await self._activate(conn, built, failures, run)
                if failures:
                    await self._record_failures(conn, failures, run)
            return leftovers + conflicts
        finally:
            await locks.unlock_many(conn, locked)

    async def _lock(self, conn: asyncpg.Connection, keys: list[str], run: _Run) -> set[str]:
        """Take every key's tenant lock in one statement; report the busy ones."""
        locked = await locks.try_lock_many(conn, keys)
        busy = [key for key in keys if key not in locked]
        if busy:
            holders = await locks.holder_descriptions(conn, busy)
            for key in busy:
                run.failed(key, "lock", holders[key], busy=True)
        return locked

    async def _sort(
        self, conn: asyncpg.Connection, requests: list[tuple[str, str]], run: _Run
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """Split locked keys into new ones and those the single-tenant path finishes (left
        INITIALIZING/FAILED, or a schema of that name exists); a key in use fails."""
        if not requests:
            return [], []
        keys = [key for key, _ in requests]
        rows = await conn.fetch(
            "SELECT x.key, t.status::text AS status, "
            "to_regnamespace(x.schema) IS NOT NULL AS schema_exists "
            "FROM unnest($1::text[], $2::text[]) AS x(key, schema) "
            "LEFT JOIN public.tenants t ON t.key = x.key",
            keys,
            [schema_for(key) for key in keys],
        )
        found = {r["key"]: (r["status"], r["schema_exists"]) for r in rows}
        fresh, leftovers = [], []
        for key, name in requests:
            status, schema_exists = found[key]
            if status is None and not schema_exists:
                fresh.append((key, name))
            elif status is None or TenantStatus(status) in RESUMABLE:
                leftovers.append(key)
            else:
                run.failed(
                    key,
                    "register",
                    f"tenant key {key!r} is already in use (status {status}); choose another key",
                )
        return fresh, leftovers

    async def _register(
        self, conn: asyncpg.Connection, fresh: list[tuple[str, str]], run: _Run
    ) -> tuple[list[Tenant], list[str]]:
        """Insert the new keys as INITIALIZING with their audit rows in one statement; returns
        the tenants and the keys someone registered meanwhile (for the single-tenant path)."""
        if not fresh:
            return [], []
        rows = await conn.fetch(
            _REGISTER,
            [key for key, _ in fresh],
            [schema_for(key) for key, _ in fresh],
            [name for _, name in fresh],
            self._cluster,
            *self._runner.audit_log.actor_values,
        )
        tenants = [Tenant.from_row(r) for r in rows]
        for tenant in tenants:
            run.event(
                tenant.key,
                "register",
                Phase.DONE,
                "registering the tenant as INITIALIZING",
                details={"schema": tenant.schema_name, "display_name": tenant.display_name},
            )
        registered = {tenant.key for tenant in tenants}
        return tenants, [key for key, _ in fresh if key not in registered]

    async def _plan(self, conn: asyncpg.Connection, use_template: bool, run: _Run) -> _Plan:
        """Clone the template when it is at head, else alembic (as ``_build_schema`` does)."""
        ddl = await self._template.ddl(conn) if use_template else "alembic path requested"
        if isinstance(ddl, TemplateDDL):
            return _Plan(ddl, {"method": "clone", "revision": ddl.revision})
        if use_template:
            run.event(None, "schema", Phase.INFO, f"falling back to alembic: {ddl}")
        return _Plan(
            None, {"method": "alembic", "revision": head_revision("tenant"), "reason": ddl}
        )

    async def _build(
        self, workers: list[_Worker], tenants: list[Tenant], plan: _Plan, run: _Run
    ) -> tuple[list[Tenant], list[_Failure]]:
        """Build ``tenants`` over the workers; returns the built ones and the failures. A
        worker whose connection is lost stops; the others go on."""
        actor = self._runner.audit_log.actor
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
        failures: list[_Failure] = []

        async def work(worker: _Worker) -> None:
            await worker.use(context)
            while queue:
                tenant = queue.popleft()
                try:
                    tables = await self._build_one(worker.conn, tenant, plan)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConsoleError) as e:
                    failures.append(_Failure(tenant, *_failure(e)))
                    if worker.conn.is_closed():
                        return
                    continue
                built.append(tenant)
                self._built_events(run, tenant, plan, tables)

        await asyncio.gather(*(work(worker) for worker in workers))
        lost = "not built: the worker connections were lost"
        failures += [_Failure(tenant, "schema", lost) for tenant in queue]
        return built, failures

    async def _build_one(self, conn: asyncpg.Connection, tenant: Tenant, plan: _Plan) -> int:
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
            _elapsed_ms("statement_timestamp()") if schema_ms is None else f"{schema_ms:.1f}"
        )
        categories = qualified(schema, "categories")
        granted = f"jsonb_build_object('tables_granted', {len(tables)})"
        audit = _audit_rows(
            tenant_id,
            [
                ("schema", "ctx->'schema'", "schema_ms"),
                ("init_data", granted, "init_ms"),
                ("verify", "ctx->'verify'", _elapsed_ms("mark")),
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
    init_ms := {_elapsed_ms("mark")};
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

    def _built_events(self, run: _Run, tenant: Tenant, plan: _Plan, tables: int) -> None:
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

    async def _pool(
        self,
        conn: asyncpg.Connection,
        pools: PoolService,
        built: list[Tenant],
        failures: list[_Failure],
        run: _Run,
    ) -> list[Tenant]:
        """The built tenants' aliases in one edit and one RELOAD, one audit row each; returns
        the tenants that got their alias (all, or none when the include file cannot change)."""
        started = time.perf_counter()
        try:
            aliases, reload = await pools.add_aliases(
                built, lambda text: run.event(None, "pool", Phase.INFO, text)
            )
        except ConsoleError as exc:
            failures.extend(_Failure(tenant, "pool", exc.message) for tenant in built)
            return []
        duration = round((time.perf_counter() - started) * 1000, 1)
        entries = []
        for tenant in built:
            alias = aliases[tenant.schema_name]
            details = {
                "alias": alias.name,
                "pool_size": alias.pool_size,
                "reserve_pool": alias.reserve_pool,
                "reload": reload,
            }
            entries.append((tenant.id, {**details, "duration_ms": duration}))
            message = f"adding PgBouncer alias {tenant.schema_name}"
            run.event(tenant.key, "pool", Phase.DONE, message, details=details)
        await self._runner.audit_log.write_many(conn, f"{_OPERATION}.pool", entries)
        return built

    async def _activate(
        self, conn: asyncpg.Connection, built: list[Tenant], failures: list[_Failure], run: _Run
    ) -> None:
        """ACTIVE, with the audit rows, for every built (and verified) tenant in one statement."""
        if not built:
            return
        rows = await conn.fetch(
            _ACTIVATE, [t.id for t in built], *self._runner.audit_log.actor_values
        )
        active = {r["id"]: Tenant.from_row(r) for r in rows}
        for tenant in built:
            if tenant.id not in active:
                error = f"tenant {tenant.key!r} is no longer INITIALIZING; cannot move it to ACTIVE"
                failures.append(_Failure(tenant, "activate", error))
                continue
            run.event(tenant.key, "activate", Phase.DONE, "marking the tenant ACTIVE")
            run.succeeded(active[tenant.id])

    async def _record_failures(
        self, conn: asyncpg.Connection, failures: list[_Failure], run: _Run
    ) -> None:
        """FAILED (for those still INITIALIZING) and one ``provision.failed`` row each."""
        await conn.execute(
            "UPDATE public.tenants SET status = 'FAILED' "
            "WHERE id = ANY($1::uuid[]) AND status = 'INITIALIZING'",
            [f.tenant.id for f in failures],
        )
        await self._runner.audit_log.write_many(
            conn,
            f"{_OPERATION}.failed",
            [(f.tenant.id, {"step": f.step, "error": f.error}) for f in failures],
        )
        for f in failures:
            run.failed(f.tenant.key, f.step, f.error, tenant=f.tenant)

    async def _finish_leftovers(
        self,
        keys: list[str],
        names: dict[str, str],
        use_template: bool,
        concurrency: int,
        run: _Run,
    ) -> None:
        """Keys an earlier run left behind (or whose schema exists) go through the
        single-tenant path, which resumes and cleans up; a few at a time, as it holds two
        connections each."""
        gate = asyncio.Semaphore(max(1, min(concurrency, self._db.max_size // 2)))

        async def one(key: str) -> None:
            failed_steps: list[str] = []

            def tap(event: StepEvent) -> None:
                if event.phase is Phase.FAILED:
                    failed_steps.append(event.step)
                run.sink(event)

            async with gate:
                try:
                    tenant = await self._single(key, names[key], tap, use_template)
                except TenantBusy as exc:
                    run.failed(key, "lock", exc.message, busy=True, resumed=True)
                except ConsoleError as exc:
                    step = failed_steps[-1] if failed_steps else "register"
                    run.failed(key, step, exc.message, resumed=True, announce=not failed_steps)
                else:
                    run.succeeded(tenant, resumed=True)

        await asyncio.gather(*(one(key) for key in keys))


def _audit_rows(tenant_id: uuid.UUID, steps: list[tuple[str, str, str]]) -> str:
    """PL/pgSQL: the audit rows of ``steps`` (step, details, duration: SQL expressions) by the
    actor in ``ctx``, in one INSERT."""
    rows = ",\n        ".join(
        "("
        + audit_row(
            f"'{tenant_id}'",
            f"'{_OPERATION}.{step}'",
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
