"""Migrations across every tenant: plan once, run many (architecture §6). The facade the
service exposes; planning is :mod:`~console.core.migrations.plan`, running
:mod:`~console.core.migrations.run` (one tenant: :mod:`~console.core.migrations.apply`), history
:mod:`~console.core.migrations.history`.
"""

from __future__ import annotations

from console.core.audit import AuditLog
from console.core.cancel import Cancellation
from console.core.db import Database
from console.core.events import EventSink
from console.core.migrations import history
from console.core.migrations.apply import TenantMigrator
from console.core.migrations.history import RunSummary
from console.core.migrations.plan import MigrationPlan, MigrationStatus, Planner
from console.core.migrations.run import MigrationRun, ProgressSink, RunProgress
from console.core.migrations.tree import AlembicRunner
from console.core.operations import OperationRunner
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.template import TemplateSchema


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
        self._planner = Planner(db)
        self._lock_timeout_s = lock_timeout_s

    async def revisions(self) -> list[tuple[Tenant, str | None]]:
        """Every tenant with its schema's current revision (None: no schema or no version)."""
        return await self._planner.revisions()

    async def status(self) -> MigrationStatus:
        """Tenants per revision against head, and how many are behind or unknown."""
        return await self._planner.status()

    async def plan(
        self,
        target: str | None = None,
        keys: list[str] | None = None,
        status: TenantStatus | None = None,
    ) -> MigrationPlan:
        """Who moves from where to ``target`` (default head), and the SQL of each group."""
        return await self._planner.plan(target, keys, status)

    async def run(
        self,
        plan: MigrationPlan,
        concurrency: int,
        progress: ProgressSink,
        sink: EventSink,
        *,
        lock_timeout_s: float | None = None,
        cancellation: Cancellation | None = None,
    ) -> RunProgress:
        """Execute ``plan`` (see :meth:`MigrationRun.run`). Each tenant waits at most
        ``lock_timeout_s`` for its tables (default ``lifecycle.lock_timeout``); cancelling
        ``cancellation`` starts no new tenants (those in flight finish)."""
        timeout = self._lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        migrator = TenantMigrator(self._db, self._audit, self._alembic, timeout)
        run = MigrationRun(
            self._db,
            self._runner,
            self._audit,
            self._alembic,
            self._template,
            self._planner,
            migrator,
            cancellation or Cancellation(),
        )
        return await run.run(plan, concurrency, progress, sink)

    async def runs(self, limit: int = 20) -> list[RunSummary]:
        """Recent runs, newest first, with per-status counts."""
        return await history.runs(self._db, limit)

    async def run_failures(self, run: str | None) -> tuple[str, list[str], dict[str, str]]:
        """(run id, keys to retry, key -> error) of ``run`` (default: the latest run)."""
        return await history.run_failures(self._db, run)
