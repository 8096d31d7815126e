"""Bulk provisioning: many tenants with a few statements per batch and ONE message per tenant.

The guarantees are those of :meth:`Provisioner.provision`; only the round trips differ. Per batch
of up to ``BATCH_SIZE`` keys, on one connection held for the whole run:

1. lock — every key's advisory lock (OperationRunner's class and key) in one statement; a key
   whose lock another operation holds is reported busy, naming the holder;
2. sort — the registry rows and schemas of the locked keys in one statement: a key in use is a
   per-tenant error; a key an earlier run left INITIALIZING or FAILED, or whose schema exists
   already, is finished after the batches by the single-tenant path (``Provisioner.provision``);
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

The build is :mod:`console.core.tenants.bulk_build`; the request checks and the report are
:mod:`console.core.tenants.bulk_report`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg

from console.core import locks
from console.core.audit import AUDIT_INSERT, audit_row
from console.core.db import Database
from console.core.errors import ConsoleError, InvalidInput, OperationFailed, TenantBusy
from console.core.events import EventSink, Phase, StepEvent
from console.core.identifiers import schema_for
from console.core.migrations.tree import AlembicRunner
from console.core.operations import OperationRunner, describe_error
from console.core.pools.service import POOL_STEPS_SKIPPED, PoolService
from console.core.states import RESUMABLE
from console.core.tenants.bulk_build import BuildFailure, SchemaBuilder, Worker, elapsed_ms
from console.core.tenants.bulk_report import (
    OPERATION,
    BulkProgress,
    BulkReport,
    BulkRun,
    check_concurrency,
    check_request,
    no_progress,
)
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.template import TemplateSchema

# Keys per batch: the batch's fixed statements (lock, sort, template check, register, activate,
# unlock: ~7 round trips) cost under 0.1 round trip per tenant at 100, and the workers wait for
# the batch's slowest build once per batch; a crash leaves at most this many tenants INITIALIZING
# (the next run finishes them), and a tenant is ACTIVE at most one batch (~1 s) after its build.
BATCH_SIZE = 100

SingleProvision = Callable[[str, str | None, EventSink, bool], Awaitable[Tenant]]


_REGISTER_DETAILS = (
    "jsonb_build_object('schema', schema_name, 'display_name', display_name, "
    f"'duration_ms', {elapsed_ms('statement_timestamp()')})"
)
_ACTIVATE_DETAILS = f"jsonb_build_object('duration_ms', {elapsed_ms('statement_timestamp()')})"

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
        self._builder = SchemaBuilder(template, alembic, app_role, runner.audit_log)
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
        self._runner.refuse_if_read_only(OPERATION, " (only reads are allowed)")
        check_concurrency(concurrency, self._db.max_size)
        if batch_size < 1:
            raise InvalidInput(f"batch size must be 1 or more, got {batch_size}")
        run = BulkRun(BulkReport([key for key, _ in requests]), sink, progress or no_progress)
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
    ) -> AsyncIterator[tuple[asyncpg.Connection, list[Worker]]]:
        """The lock connection (showing who holds the locks, as OperationRunner's does) and
        ``concurrency`` workers; the pool's reset on release restores their settings."""
        async with AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._db.acquire())
            await conn.execute(
                "SELECT set_config('application_name', $1, false)",
                self._runner.application_name(OPERATION),
            )
            workers = [
                Worker(await stack.enter_async_context(self._db.acquire()))
                for _ in range(concurrency)
            ]
            yield conn, workers

    async def _batch(
        self,
        conn: asyncpg.Connection,
        workers: list[Worker],
        requests: list[tuple[str, str]],
        use_template: bool,
        run: BulkRun,
    ) -> list[str]:
        """One batch, start to end; returns the keys left for the single-tenant path."""
        locked = await self._lock(conn, [key for key, _ in requests], run)
        try:
            fresh, leftovers = await self._sort(conn, [r for r in requests if r[0] in locked], run)
            tenants, conflicts = await self._register(conn, fresh, run)
            if tenants:
                plan = await self._builder.plan(conn, use_template, run)
                built, failures = await self._builder.build(workers, tenants, plan, run)
                if self._pools is not None and built:
                    built = await self._pool(conn, self._pools, built, failures, run)
                await self._activate(conn, built, failures, run)
                if failures:
                    await self._record_failures(conn, failures, run)
            return leftovers + conflicts
        finally:
            await locks.unlock_many(conn, locked)

    async def _lock(self, conn: asyncpg.Connection, keys: list[str], run: BulkRun) -> set[str]:
        """Take every key's tenant lock in one statement; report the busy ones."""
        locked = await locks.try_lock_many(conn, keys)
        busy = [key for key in keys if key not in locked]
        if busy:
            holders = await locks.holder_descriptions(conn, busy)
            for key in busy:
                run.failed(key, "lock", holders[key], busy=True)
        return locked

    async def _sort(
        self, conn: asyncpg.Connection, requests: list[tuple[str, str]], run: BulkRun
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
        self, conn: asyncpg.Connection, fresh: list[tuple[str, str]], run: BulkRun
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

    async def _pool(
        self,
        conn: asyncpg.Connection,
        pools: PoolService,
        built: list[Tenant],
        failures: list[BuildFailure],
        run: BulkRun,
    ) -> list[Tenant]:
        """The built tenants' aliases in one edit and one RELOAD, one audit row each; returns
        the tenants that got their alias (all, or none when the include file cannot change)."""
        started = time.perf_counter()
        try:
            aliases, reload = await pools.add_aliases(
                built, lambda text: run.event(None, "pool", Phase.INFO, text)
            )
        except ConsoleError as exc:
            failures.extend(BuildFailure(tenant, "pool", exc.message) for tenant in built)
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
        await self._runner.audit_log.write_many(conn, f"{OPERATION}.pool", entries)
        return built

    async def _activate(
        self,
        conn: asyncpg.Connection,
        built: list[Tenant],
        failures: list[BuildFailure],
        run: BulkRun,
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
                failures.append(BuildFailure(tenant, "activate", error))
                continue
            run.event(tenant.key, "activate", Phase.DONE, "marking the tenant ACTIVE")
            run.succeeded(active[tenant.id])

    async def _record_failures(
        self, conn: asyncpg.Connection, failures: list[BuildFailure], run: BulkRun
    ) -> None:
        """FAILED (for those still INITIALIZING) and one ``provision.failed`` row each."""
        await conn.execute(
            "UPDATE public.tenants SET status = 'FAILED' "
            "WHERE id = ANY($1::uuid[]) AND status = 'INITIALIZING'",
            [f.tenant.id for f in failures],
        )
        await self._runner.audit_log.write_many(
            conn,
            f"{OPERATION}.failed",
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
        run: BulkRun,
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
