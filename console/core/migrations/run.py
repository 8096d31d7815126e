"""Running a migration plan across every tenant (architecture §6): control tree first, then
every tenant with bounded concurrency under the run lock, each in its own transaction under its
advisory lock (:mod:`console.core.migrations.apply`); outcome records and audit rows follow
within a quarter of a second, batched (:mod:`console.core.migrations.records`). One failing
tenant never stops the others; busy tenants are retried at the end. Revisions that declare
``OFFLINE_SAFE = False`` run through alembic in worker processes (alembic's module globals forbid
concurrent upgrades in one process).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console.core import locks
from console.core.audit import AuditLog
from console.core.cancel import Cancellation
from console.core.db import Database
from console.core.errors import InvalidInput, TenantBusy
from console.core.events import EventSink, Phase, StepEvent
from console.core.hints import Field, LowerConcurrency
from console.core.migrations.apply import TenantMigrator, elapsed, usable
from console.core.migrations.concurrency import concurrency_in_range
from console.core.migrations.plan import MigrationPlan, PlanGroup, Planner
from console.core.migrations.records import LandedRecorder, reconcile
from console.core.migrations.tree import AlembicRunner, head_revision
from console.core.operations import OperationRunner, max_workers
from console.core.tenants.registry import Tenant
from console.core.tenants.template import TemplateSchema

# Connections a run holds besides its workers: the one for the run lock and the records.
HELD_CONNECTIONS = 1
RUN_LOCK = "*migrate-run*"


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


def check_concurrency(concurrency: int, pool_size: int) -> None:
    """InvalidInput unless ``concurrency`` is in range (:func:`concurrency_in_range`) and the
    console's pool (``pool_size`` connections) serves that many workers besides the run's own."""
    concurrency_in_range(concurrency)
    workers = max_workers(pool_size, HELD_CONNECTIONS)
    if concurrency > workers:
        raise InvalidInput(
            f"concurrency {concurrency} needs {concurrency + HELD_CONNECTIONS} connections but "
            f"the console's pool has {pool_size} (pool_max_size of the cluster)",
            field=Field.CONCURRENCY,
            hint=LowerConcurrency(workers),
        )


class MigrationRun:
    """Executes plans on one cluster; a cancelled ``cancellation`` stops handing out tenants."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        audit: AuditLog,
        alembic: AlembicRunner,
        template: TemplateSchema,
        planner: Planner,
        migrator: TenantMigrator,
        cancellation: Cancellation,
    ) -> None:
        self._db = db
        self._runner = runner
        self._audit = audit
        self._alembic = alembic
        self._template = template
        self._planner = planner
        self._migrator = migrator
        self._cancellation = cancellation

    async def run(
        self,
        plan: MigrationPlan,
        concurrency: int,
        progress: ProgressSink,
        sink: EventSink,
    ) -> RunProgress:
        """Execute ``plan``: control tree first, then every tenant (bounded concurrency);
        one failing tenant never stops the others. Busy tenants are retried at the end."""
        self._runner.refuse_if_read_only("migrate")
        check_concurrency(concurrency, self._db.max_size)
        async with self._db.acquire() as lock_conn:
            if not await locks.try_lock(lock_conn, RUN_LOCK):
                raise TenantBusy("another migrate run holds the migration lock; try again later")
            try:
                return await self._run_locked(lock_conn, plan, concurrency, progress, sink)
            finally:
                await locks.unlock(lock_conn, RUN_LOCK)

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
            if busy and not self._cancellation.cancelled:
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
            await self._migrator.record(
                None, run_id, tenant, "skipped_busy", "busy with another operation", None
            )
        progress(state)
        # A run that left tenants behind (failed or busy) did not succeed.
        final = (
            "cancelled"
            if self._cancellation.cancelled
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
        revisions = {t.id: rev for t, rev in await self._planner.revisions()}
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
            while queue and not self._cancellation.cancelled:
                lost: tuple[Tenant, PlanGroup, str, float] | None = None
                async with self._db.acquire() as conn:
                    while queue and not self._cancellation.cancelled:
                        tenant, group = queue.pop()
                        started = time.perf_counter()
                        outcome = await self._migrator.migrate_one(
                            conn, state.run_id, tenant, group, pool
                        )
                        if outcome == "busy":
                            busy.append((tenant, group))
                            continue
                        if not usable(conn):
                            lost = (tenant, group, outcome, elapsed(started))
                            break
                        finished(tenant, group, outcome, elapsed(started))
                if lost is not None:
                    tenant, group, outcome, duration = lost
                    if outcome != "succeeded":
                        await self._migrator.record(
                            None, state.run_id, tenant, "failed", outcome, duration
                        )
                    finished(tenant, group, outcome, duration)

        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(work) or 1))))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return busy
