"""Migrations across every tenant: plan once, run many (architecture §6).

Every tenant's revision is read at once; tenants already at the target are skipped; the rest are
grouped by starting revision and the SQL of each group is rendered once with alembic's offline
mode, then executed per tenant over asyncpg — each tenant in its own transaction, under its
advisory lock, with a lock timeout and its version row updated in the same transaction; its
outcome record and audit row follow within a quarter of a second, batched with other tenants'
(``migrations.records``). Revisions that declare ``OFFLINE_SAFE = False`` run through alembic
in worker processes instead (alembic's module globals forbid concurrent upgrades in one
process).

Rules by status: ACTIVE and INACTIVE tenants are migrated; ARCHIVED (no schema), INITIALIZING,
FAILED, DEACTIVATING and OFFBOARDING are skipped (provisioning always builds at head).
"""

from __future__ import annotations

import asyncio
import functools
import io
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import asyncpg

from console.core.db import ConnectionSpec, Database
from console.core.errors import InvalidInput, NotFound, OperationFailed, ReadOnlyMode, TenantBusy
from console.core.events import EventSink, Phase, StepEvent
from console.core.identifiers import SqlTemplate, qualified
from console.core.locks import LOCK_TIMEOUT_SQLSTATE, blocked_by, schema_lock_holders
from console.core.migrations.records import LandedRecorder, reconcile
from console.core.migrations.tree import (
    ALEMBIC_LOCK,
    VERSION_TABLE,
    AlembicRunner,
    alembic_config,
    head_revision,
    script_directory,
)
from console.core.operations import TENANT_LOCK_CLASS, OperationRunner, describe_error
from console.core.tenants.registry import AuditLog, Tenant, TenantStatus
from console.core.tenants.stats import schema_revisions
from console.core.tenants.template import TemplateSchema

MIGRATED_STATUSES = frozenset({TenantStatus.ACTIVE, TenantStatus.INACTIVE})
RENDER_SCHEMA = "goconsole_render_target"
RENDER_TENANT_ID = uuid.UUID(int=0)
RUN_LOCK = "*migrate-run*"
_SPARE_WAIT_S = 2.0
# Raised inside a tenant's migration when its advisory lock is held by another operation.
BUSY_SQLSTATE = "GCBSY"


class RevisionState(StrEnum):
    """Where a tenant's revision stands against a target revision (head unless given): the one
    classification ``migrate status``, ``migrate plan`` and the Migrations screen share."""

    AT_TARGET = "head"
    BEHIND = "behind"  # a known revision before the target: a run moves it
    UNKNOWN = "unknown"  # ahead of the target, not in this code's tree, or no version row


def classify_revision(revision: str | None, target: str, order: dict[str, int]) -> RevisionState:
    """Classify ``revision`` against ``target``; ``order`` ranks the tree's revisions."""
    if revision is None or revision not in order:
        return RevisionState.UNKNOWN
    if revision == target:
        return RevisionState.AT_TARGET
    return RevisionState.BEHIND if order[revision] < order[target] else RevisionState.UNKNOWN


@dataclass
class PlanGroup:
    """Tenants moving from one revision to the target the same way."""

    from_rev: str
    to_rev: str
    tenants: list[Tenant]
    sql: str | None  # rendered with placeholders; None = run through alembic processes
    reason: str = ""

    @property
    def method(self) -> str:
        """``sql`` (pre-rendered) or ``alembic`` (process pool)."""
        return "sql" if self.sql is not None else "alembic"

    @functools.cached_property
    def template(self) -> SqlTemplate:
        """The rendered SQL, split once for rewriting per tenant."""
        assert self.sql is not None
        return SqlTemplate(self.sql, RENDER_SCHEMA, RENDER_TENANT_ID)

    def as_json(self, with_sql: bool = True) -> dict[str, Any]:
        """JSON-ready dict."""
        data: dict[str, Any] = {
            "from": self.from_rev,
            "to": self.to_rev,
            "tenants": [t.key for t in self.tenants],
            "method": self.method,
        }
        if self.reason:
            data["reason"] = self.reason
        if with_sql and self.sql is not None:
            data["sql"] = display_sql(self.sql)
        return data


@dataclass
class MigrationPlan:
    """What a run would do."""

    target: str
    groups: list[PlanGroup] = field(default_factory=list)
    at_target: list[Tenant] = field(default_factory=list)
    skipped: list[tuple[Tenant, str]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """How many tenants would be migrated."""
        return sum(len(g.tenants) for g in self.groups)

    def as_json(self, with_sql: bool = True) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "target": self.target,
            "pending": self.pending,
            "at_target": len(self.at_target),
            "groups": [g.as_json(with_sql) for g in self.groups],
            "skipped": [{"tenant": t.key, "reason": r} for t, r in self.skipped],
        }


@dataclass
class RunProgress:
    """Counts of a run in progress (sent after every tenant)."""

    run_id: uuid.UUID
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)
    failures: dict[str, str] = field(default_factory=dict)
    last: str = ""

    @property
    def remaining(self) -> int:
        """Tenants not finished yet."""
        return self.total - self.done - self.failed - self.skipped

    @property
    def rate(self) -> float:
        """Tenants per second so far."""
        elapsed = time.perf_counter() - self.started
        finished = self.done + self.failed + self.skipped
        return finished / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate."""
        return self.remaining / self.rate if self.rate > 0 else None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "run": str(self.run_id),
            "total": self.total,
            "succeeded": self.done,
            "failed": self.failed,
            "skipped_busy": self.skipped,
            "tenants_per_s": round(self.rate, 1),
            "failures": self.failures,
        }


ProgressSink = Callable[[RunProgress], None]


def display_sql(sql: str) -> str:
    """Rendered SQL with the placeholders shown as such."""
    return sql.replace(RENDER_SCHEMA, "<tenant schema>").replace(
        str(RENDER_TENANT_ID), "<tenant id>"
    )


def offline_unsafe(from_rev: str, to_rev: str) -> list[str]:
    """Revisions between the two that declare ``OFFLINE_SAFE = False``."""
    script = script_directory("tenant")
    unsafe = []
    for rev in script.iterate_revisions(to_rev, from_rev):
        if getattr(rev.module, "OFFLINE_SAFE", True) is False:
            unsafe.append(rev.revision)
    return unsafe


def render_sql(from_rev: str, to_rev: str) -> str:
    """The tenant tree's SQL from ``from_rev`` to ``to_rev`` for the placeholder schema, without
    the BEGIN/COMMIT (the runner owns the transaction)."""
    from alembic import command  # loads alembic and SQLAlchemy: only when SQL is rendered

    buffer = io.StringIO()
    cfg = alembic_config("tenant")
    cfg.output_buffer = buffer
    cfg.attributes.update(schema=RENDER_SCHEMA, tenant_id=str(RENDER_TENANT_ID))
    with ALEMBIC_LOCK:
        command.upgrade(cfg, f"{from_rev}:{to_rev}", sql=True)
    lines = [
        line for line in buffer.getvalue().splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")
    ]
    return "\n".join(lines).strip() + "\n"


def _upgrade_in_process(
    conninfo: str, password: str | None, schema: str, tenant_id: str, target: str
) -> None:
    """Process-pool entry point: one alembic upgrade in a fresh process."""
    AlembicRunner(ConnectionSpec(conninfo, password)).upgrade_tenant(schema, tenant_id, target)


class MigrationRunner:
    """Plans and runs tenant migrations on one cluster."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        audit: AuditLog,
        alembic: AlembicRunner,
        template: TemplateSchema,
        lock_timeout_s: float,
    ) -> None:
        self._db = db
        self._runner = runner
        self._audit = audit
        self._alembic = alembic
        self._template = template
        self.lock_timeout_s = lock_timeout_s
        self.cancelled = asyncio.Event()

    # -- reading ------------------------------------------------------------------------------

    async def revisions(self) -> list[tuple[Tenant, str | None]]:
        """Every tenant with its schema's current revision (None: no schema or no version)."""
        async with self._db.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM public.tenants ORDER BY key")
            async with self._spare_connection() as spare:
                revisions = await schema_revisions(conn, *([spare] if spare is not None else []))
        tenants = [Tenant.from_row(r) for r in rows]
        return [(t, revisions.get(t.schema_name)) for t in tenants]

    @asynccontextmanager
    async def _spare_connection(self) -> AsyncIterator[asyncpg.Connection | None]:
        """A second pooled connection to read revisions with, when one is free right away."""
        pool = self._db.pool
        if not pool.get_idle_size() and pool.get_size() >= pool.get_max_size():
            yield None
            return
        try:
            proxy = await pool.acquire(timeout=_SPARE_WAIT_S)
        except TimeoutError:
            yield None
            return
        try:
            yield cast(asyncpg.Connection, proxy)
        finally:
            await pool.release(proxy)

    async def status(self) -> dict[str, Any]:
        """Tenants per revision, each classified against head (:func:`classify_revision`), and
        how many are behind (a run moves them) or at an unknown revision (none moves them)."""
        head = head_revision("tenant")
        order = self._order()
        counts: dict[str, int] = {}
        states: dict[str, RevisionState] = {}
        for tenant, revision in await self.revisions():
            if tenant.status not in MIGRATED_STATUSES:
                continue
            label = revision or "(none)"
            counts[label] = counts.get(label, 0) + 1
            states[label] = classify_revision(revision, head, order)
        total = {state: 0 for state in RevisionState}
        for label, n in counts.items():
            total[states[label]] += n
        return {
            "head": head,
            "behind": total[RevisionState.BEHIND],
            "unknown": total[RevisionState.UNKNOWN],
            "revisions": [
                {
                    "revision": rev,
                    "tenants": n,
                    "at_head": states[rev] is RevisionState.AT_TARGET,
                    "state": states[rev].value,
                }
                for rev, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
            ],
        }

    @staticmethod
    def _order() -> dict[str, int]:
        revs = list(script_directory("tenant").walk_revisions("base", "heads"))
        return {r.revision: i for i, r in enumerate(reversed(revs))}

    async def plan(
        self,
        target: str | None = None,
        keys: list[str] | None = None,
        status: TenantStatus | None = None,
    ) -> MigrationPlan:
        """Who moves from where to ``target`` (default head), and the SQL of each group."""
        order = self._order()
        to = target or head_revision("tenant")
        if to not in order:
            allowed = ", ".join(sorted(order, key=order.__getitem__))
            raise InvalidInput(f"unknown revision {to!r}; known: {allowed}")
        plan = MigrationPlan(to)
        wanted = set(keys) if keys else None
        seen: set[str] = set()
        groups: dict[str, list[Tenant]] = {}
        for tenant, revision in await self.revisions():
            if wanted is not None and tenant.key not in wanted:
                continue
            seen.add(tenant.key)
            if status is not None and tenant.status is not status:
                continue
            if tenant.status not in MIGRATED_STATUSES:
                plan.skipped.append((tenant, f"status {tenant.status}: not migrated"))
                continue
            match classify_revision(revision, to, order):
                case RevisionState.AT_TARGET:
                    plan.at_target.append(tenant)
                case RevisionState.BEHIND:
                    assert revision is not None
                    groups.setdefault(revision, []).append(tenant)
                case RevisionState.UNKNOWN:
                    plan.skipped.append((tenant, _unknown_reason(revision, to, order)))
        if wanted is not None and wanted - seen:
            raise InvalidInput(f"unknown tenant key(s): {', '.join(sorted(wanted - seen))}")
        for from_rev in sorted(groups, key=order.__getitem__):
            unsafe = offline_unsafe(from_rev, to)
            if unsafe:
                group = PlanGroup(
                    from_rev,
                    to,
                    groups[from_rev],
                    None,
                    f"revision(s) {', '.join(unsafe)} cannot be rendered offline",
                )
            else:
                sql = await asyncio.to_thread(render_sql, from_rev, to)
                group = PlanGroup(from_rev, to, groups[from_rev], sql)
            plan.groups.append(group)
        return plan

    # -- running ------------------------------------------------------------------------------

    async def run(
        self,
        plan: MigrationPlan,
        concurrency: int,
        progress: ProgressSink,
        sink: EventSink,
    ) -> RunProgress:
        """Execute ``plan``: control tree first, then every tenant (bounded concurrency);
        one failing tenant never stops the others. Busy tenants are retried at the end."""
        if self._runner.read_only:
            raise ReadOnlyMode("migrate refused: the console is in read-only mode")
        if not 1 <= concurrency <= 32:
            raise InvalidInput(f"--concurrency must be between 1 and 32, got {concurrency}")
        workers = self._db.max_size - 1  # one connection holds the run lock
        if concurrency > workers:
            raise InvalidInput(
                f"--concurrency {concurrency} needs {concurrency + 1} connections but the "
                f"console's pool has {self._db.max_size} (pool_max_size of the cluster): use "
                f"--concurrency 1-{workers} or raise pool_max_size"
            )
        self.cancelled.clear()
        async with self._db.acquire() as lock_conn:
            if not await lock_conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", TENANT_LOCK_CLASS, RUN_LOCK
            ):
                raise TenantBusy("another migrate run holds the migration lock; try again later")
            try:
                return await self._run_locked(lock_conn, plan, concurrency, progress, sink)
            finally:
                await lock_conn.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", TENANT_LOCK_CLASS, RUN_LOCK
                )

    async def _run_locked(
        self,
        lock_conn: asyncpg.Connection,
        plan: MigrationPlan,
        concurrency: int,
        progress: ProgressSink,
        sink: EventSink,
    ) -> RunProgress:
        await self._close_dead_runs(lock_conn, sink)
        sink(StepEvent("migrate", None, "control", Phase.STARTED, "migrating the control schema"))
        await asyncio.to_thread(self._alembic.upgrade_control)
        sink(StepEvent("migrate", None, "control", Phase.DONE, "control schema at head"))
        if plan.target == head_revision("tenant"):
            async with self._db.acquire() as conn:
                await self._template.ensure(conn)
        async with self._db.acquire() as conn, conn.transaction():
            run_id: uuid.UUID = await conn.fetchval(
                "INSERT INTO public.migration_runs (target) VALUES ($1) RETURNING id", plan.target
            )
            await conn.execute(
                "INSERT INTO public.migration_run_tenants (run_id, tenant_id, from_rev, to_rev, "
                "status) SELECT $1, t, f, $4, 'pending' FROM unnest($2::uuid[], $3::text[]) "
                "AS x(t, f)",
                run_id,
                [t.id for g in plan.groups for t in g.tenants],
                [g.from_rev for g in plan.groups for _ in g.tenants],
                plan.target,
            )
            await self._audit.write(
                conn,
                None,
                "migrate.run",
                {
                    "run": str(run_id),
                    "target": plan.target,
                    "tenants": plan.pending,
                    "groups": [g.as_json(with_sql=False) for g in plan.groups],
                },
            )
        state = RunProgress(run_id, plan.pending)
        progress(state)
        work = [(t, g) for g in plan.groups for t in g.tenants]
        # The run's lock connection is idle while tenants migrate: it writes their records.
        async with LandedRecorder(lock_conn, self._audit, run_id) as recorder:
            busy = await self._work_through(work, concurrency, state, progress, sink, recorder)
            if busy and not self.cancelled.is_set():
                sink(
                    StepEvent(
                        "migrate",
                        None,
                        "retry_busy",
                        Phase.INFO,
                        f"retrying {len(busy)} tenant(s) that were busy",
                    )
                )
                busy = await self._work_through(busy, concurrency, state, progress, sink, recorder)
        for tenant, _ in busy:
            state.skipped += 1
            state.failures[tenant.key] = "busy with another operation (skipped)"
            await self._record(
                None, run_id, tenant, "skipped_busy", "busy with another operation", None
            )
        progress(state)
        # A run that left tenants behind (failed or busy) did not succeed.
        final = (
            "cancelled"
            if self.cancelled.is_set()
            else ("failed" if state.failed or state.skipped else "succeeded")
        )
        async with self._db.acquire() as conn:
            await conn.execute(
                "UPDATE public.migration_runs SET status = $2, finished_at = clock_timestamp() "
                "WHERE id = $1",
                run_id,
                final,
            )
        return state

    async def _close_dead_runs(self, conn: asyncpg.Connection, sink: EventSink) -> None:
        """No other run is alive while we hold the run lock: runs still marked ``running``
        died. Record the tenants they migrated but had not yet recorded, then mark them
        ``interrupted`` (their other pending tenants stay pending, for ``migrate retry``)."""
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM public.migration_runs WHERE status = 'running')"
        ):
            return
        revisions = {t.id: rev for t, rev in await self.revisions()}
        recorded = await reconcile(conn, self._audit, revisions)
        if recorded:
            sink(
                StepEvent(
                    "migrate",
                    None,
                    "reconcile",
                    Phase.INFO,
                    f"recorded {recorded} tenant(s) an interrupted run had migrated",
                )
            )
        await conn.execute(
            "UPDATE public.migration_runs SET status = 'interrupted' WHERE status = 'running'"
        )

    async def _work_through(
        self,
        work: list[tuple[Tenant, PlanGroup]],
        concurrency: int,
        state: RunProgress,
        progress: ProgressSink,
        sink: EventSink,
        recorder: LandedRecorder,
    ) -> list[tuple[Tenant, PlanGroup]]:
        """Migrate ``work`` with ``concurrency`` workers; return the tenants found busy."""
        queue = list(reversed(work))
        busy: list[tuple[Tenant, PlanGroup]] = []
        pool: ProcessPoolExecutor | None = None
        if any(g.sql is None for _, g in work):
            pool = ProcessPoolExecutor(
                max_workers=concurrency, mp_context=multiprocessing.get_context("spawn")
            )

        def finished(tenant: Tenant, group: PlanGroup, outcome: str, duration: float) -> None:
            if outcome == "succeeded":
                if group.sql is not None:  # the alembic path recorded it in its transaction
                    recorder.add(tenant.id, duration)
                state.done += 1
                sink(
                    StepEvent(
                        "migrate",
                        tenant.key,
                        "apply",
                        Phase.DONE,
                        f"{group.from_rev} → {group.to_rev}",
                    )
                )
            else:
                state.failed += 1
                state.failures[tenant.key] = outcome
                sink(StepEvent("migrate", tenant.key, "apply", Phase.FAILED, outcome))
            state.last = tenant.key
            progress(state)

        async def worker() -> None:
            # Failures are recorded on the worker's own connection (a second pooled connection
            # per failure would deadlock once every worker waits for one). A worker whose
            # connection is lost records that tenant on a fresh connection and goes on with
            # another, instead of failing the rest of the queue on a dead connection.
            while queue and not self.cancelled.is_set():
                lost: tuple[Tenant, PlanGroup, str, float] | None = None
                async with self._db.acquire() as conn:
                    while queue and not self.cancelled.is_set():
                        tenant, group = queue.pop()
                        started = time.perf_counter()
                        outcome = await self._migrate_one(conn, state.run_id, tenant, group, pool)
                        if outcome == "busy":
                            busy.append((tenant, group))
                            continue
                        if not _usable(conn):
                            lost = (tenant, group, outcome, _elapsed(started))
                            break
                        finished(tenant, group, outcome, _elapsed(started))
                if lost is not None:
                    tenant, group, outcome, duration = lost
                    if outcome != "succeeded":
                        await self._record(None, state.run_id, tenant, "failed", outcome, duration)
                    finished(tenant, group, outcome, duration)

        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(work) or 1))))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return busy

    async def _migrate_one(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        pool: ProcessPoolExecutor | None,
    ) -> str:
        """``succeeded``, ``busy``, or the error text."""
        started = time.perf_counter()
        try:
            if group.sql is None:
                return await self._migrate_with_alembic(conn, run_id, tenant, group, pool, started)
            await conn.execute(self._tenant_script(tenant, group))
            return "succeeded"
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == BUSY_SQLSTATE:
                return "busy"
            error = describe_error(exc)
            if exc.sqlstate == LOCK_TIMEOUT_SQLSTATE and _usable(conn):
                error = f"{error} — {await self._blockers(conn, tenant)}"
        except OperationFailed as exc:
            error = describe_error(exc)
        except (asyncpg.InterfaceError, OSError) as exc:
            # The rollback on a dead connection raises anew; name the server's reason if any.
            cause = exc.__context__ if isinstance(exc.__context__, asyncpg.PostgresError) else exc
            error = describe_error(cause)
        if not _usable(conn):
            return f"connection lost: {error}"  # the worker records it on a fresh connection
        await self._record(conn, run_id, tenant, "failed", error, _elapsed(started))
        return error

    @staticmethod
    async def _blockers(conn: asyncpg.Connection, tenant: Tenant) -> str:
        """Who held the tenant's tables when its migration gave up on its lock timeout, looked
        up at once on the worker's connection (the holders usually still hold them)."""
        try:
            return blocked_by(await schema_lock_holders(conn, tenant.schema_name))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            return f"the lock holders could not be looked up: {describe_error(exc)}"

    def _tenant_script(self, tenant: Tenant, group: PlanGroup) -> str:
        """One tenant's whole migration as one message, which PostgreSQL runs as one implicit
        transaction (all or nothing): the lock timeout, the tenant's advisory lock (or the BUSY
        error), a check that the tenant is still at the planned revision (alembic's SQL then
        moves the version row step by step to the target), and the SQL. Its outcome record and
        audit row follow after the commit, batched with other tenants' (LandedRecorder).

        One round trip per tenant instead of nine: on a small machine the client and the server
        share the cores, and the round trips, not the DDL, were most of the cost. Values are
        inlined as literals (simple query protocol).
        """
        sql = group.template.render(tenant.schema_name, tenant.id)
        key, from_rev = _literal(tenant.key), _literal(group.from_rev)
        timeout_ms = max(1, round(self.lock_timeout_s * 1000))
        return f"""DO $goconsole$DECLARE found text;
BEGIN
    PERFORM set_config('lock_timeout', '{timeout_ms}', true);
    IF NOT pg_try_advisory_xact_lock({TENANT_LOCK_CLASS}, hashtext({key})) THEN
        RAISE EXCEPTION 'tenant % is busy', {key} USING ERRCODE = '{BUSY_SQLSTATE}';
    END IF;
    SELECT version_num INTO found FROM {qualified(tenant.schema_name, VERSION_TABLE)};
    IF found IS DISTINCT FROM {from_rev} THEN
        RAISE EXCEPTION 'tenant is at %, not at % as planned (plan again)', found, {from_rev};
    END IF;
END$goconsole$;
{sql}"""

    async def _migrate_with_alembic(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        pool: ProcessPoolExecutor | None,
        started: float,
    ) -> str:
        assert pool is not None
        if not await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", TENANT_LOCK_CLASS, tenant.key
        ):
            return "busy"
        try:
            spec = self._alembic.spec
            await asyncio.get_running_loop().run_in_executor(
                pool,
                _upgrade_in_process,
                spec.conninfo,
                spec.password,
                tenant.schema_name,
                str(tenant.id),
                group.to_rev,
            )
            async with conn.transaction():
                await self._finish(conn, run_id, tenant, group, started)
        except Exception as exc:  # alembic raises many types across the process boundary
            raise OperationFailed(describe_error(exc)) from exc
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock($1, hashtext($2))", TENANT_LOCK_CLASS, tenant.key
            )
        return "succeeded"

    async def _finish(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        started: float,
    ) -> None:
        """Check the version row, record success and audit — inside the tenant's transaction."""
        revision = await conn.fetchval(
            f"SELECT version_num FROM {qualified(tenant.schema_name, VERSION_TABLE)}"
        )
        if revision != group.to_rev:
            raise OperationFailed(
                f"version row says {revision} after migrating, not {group.to_rev}"
            )
        duration = _elapsed(started)
        await conn.execute(
            "UPDATE public.migration_run_tenants SET status = 'succeeded', error = NULL, "
            "duration_ms = $3 WHERE run_id = $1 AND tenant_id = $2",
            run_id,
            tenant.id,
            duration,
        )
        await self._audit.write(
            conn,
            tenant.id,
            "migrate.apply",
            {
                "run": str(run_id),
                "from": group.from_rev,
                "to": group.to_rev,
                "method": group.method,
                "duration_ms": round(duration, 1),
            },
        )

    async def _record(
        self,
        conn: asyncpg.Connection | None,
        run_id: uuid.UUID,
        tenant: Tenant,
        status: str,
        error: str,
        duration: float | None,
    ) -> None:
        """Record a tenant's outcome on ``conn`` (outside any transaction), or on a pooled
        connection when ``conn`` is None."""
        if conn is None:
            async with self._db.acquire() as pooled:
                await self._record(pooled, run_id, tenant, status, error, duration)
            return
        await conn.execute(
            "UPDATE public.migration_run_tenants SET status = $3, error = $4, "
            "duration_ms = $5 WHERE run_id = $1 AND tenant_id = $2",
            run_id,
            tenant.id,
            status,
            error[:2000],
            duration,
        )

    # -- history ------------------------------------------------------------------------------

    async def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent runs, newest first, with per-status counts."""
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT r.id, r.started_at, r.finished_at, r.target, r.status,
                       count(t.*) AS tenants,
                       count(t.*) FILTER (WHERE t.status = 'succeeded') AS succeeded,
                       count(t.*) FILTER (WHERE t.status = 'failed') AS failed,
                       count(t.*) FILTER (WHERE t.status = 'skipped_busy') AS skipped_busy,
                       count(t.*) FILTER (WHERE t.status = 'pending') AS pending
                FROM public.migration_runs r
                LEFT JOIN public.migration_run_tenants t ON t.run_id = r.id
                GROUP BY r.id ORDER BY r.started_at DESC LIMIT $1
                """,
                limit,
            )
        return [
            {
                **dict(r),
                "id": str(r["id"]),
                "started_at": r["started_at"].isoformat(),
                "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
            }
            for r in rows
        ]

    async def run_failures(self, run: str | None) -> tuple[str, list[str], dict[str, str]]:
        """(run id, keys to retry, key -> error) of ``run`` (default: the latest run)."""
        async with self._db.acquire() as conn:
            if run is None:
                found = await conn.fetchrow(
                    "SELECT id, target FROM public.migration_runs ORDER BY started_at DESC LIMIT 1"
                )
            else:
                try:
                    run_id = uuid.UUID(run)
                except ValueError:
                    raise InvalidInput(f"run must be a run id (uuid), got {run!r}") from None
                found = await conn.fetchrow(
                    "SELECT id, target FROM public.migration_runs WHERE id = $1", run_id
                )
            if found is None:
                raise NotFound("no such migration run (see: goconsole migrate runs)")
            rows = await conn.fetch(
                "SELECT t.key, r.error FROM public.migration_run_tenants r "
                "JOIN public.tenants t ON t.id = r.tenant_id "
                "WHERE r.run_id = $1 AND r.status IN ('failed', 'skipped_busy', 'pending') "
                "ORDER BY t.key",
                found["id"],
            )
        return found["target"], [r["key"] for r in rows], {r["key"]: r["error"] or "" for r in rows}


def _unknown_reason(revision: str | None, target: str, order: dict[str, int]) -> str:
    """Why a tenant classified UNKNOWN against ``target`` is not migrated."""
    if revision is None:
        return "schema or version table missing"
    if revision not in order:
        return f"unknown revision {revision}"
    return f"at {revision}, ahead of {target}: no downgrades"


def _literal(value: str) -> str:
    """A SQL string literal, quoted as PostgreSQL's quote_literal does."""
    if "\x00" in value:
        raise InvalidInput("a SQL literal cannot contain NUL")
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def _usable(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is still open (a lost one is detached from its proxy)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def _elapsed(started: float) -> float:
    return (time.perf_counter() - started) * 1000
