"""The facade the front ends receive: one object per cluster connection, built from Settings."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from console.config import Settings
from console.core import locks
from console.core.actor import Actor
from console.core.audit import AuditEntry, AuditLog
from console.core.db import ConnectionSpec, Database
from console.core.errors import NotConfigured, NotInitialised
from console.core.events import EventSink, discard
from console.core.hints import RunInit
from console.core.pools.admin_spec import AdminSpec
from console.core.tenants.registry import Registry, Tenant, TenantStatus, registry_exists
from console.core.tenants.stats import SchemaStats, schema_revisions, schema_stats

if TYPE_CHECKING:  # the sub-services' modules load when a property first builds one
    from console.core.backups.service import BackupService
    from console.core.binaries import PgBinaries
    from console.core.bootstrap import InitReport
    from console.core.health.service import HealthService
    from console.core.migrations.runner import MigrationRunner
    from console.core.migrations.tree import AlembicRunner
    from console.core.operations import OperationRunner
    from console.core.pools.service import PoolService
    from console.core.scheduler.service import SchedulerService
    from console.core.security.privileges import PrivilegeReport
    from console.core.stats.service import StatsService
    from console.core.tenants.bulk_report import BulkProgress, BulkReport
    from console.core.tenants.detail import TenantDetail
    from console.core.tenants.lifecycle import Lifecycle, OffboardReport
    from console.core.tenants.overview import TenantRow
    from console.core.tenants.provision import Provisioner
    from console.core.tenants.template import TemplateSchema


class ConsoleService:
    """Everything a front end may do, on one cluster. Use as ``async with``."""

    def __init__(
        self,
        settings: Settings,
        *,
        cluster: str | None = None,
        dsn: str | None = None,
        read_only: bool | None = None,
        actor: Actor | None = None,
        pgbouncer_dsn: str | None = None,
    ) -> None:
        self.settings = settings
        self.cluster_name = cluster or settings.default_cluster
        cluster_settings = settings.cluster(self.cluster_name)
        self.spec = ConnectionSpec.resolve(cluster_settings, dsn)
        self.app_role = cluster_settings.app_role
        self.read_only = settings.read_only if read_only is None else read_only
        self.actor = actor or Actor.current()
        self.db = Database(
            self.spec, cluster_settings.pool_min_size, cluster_settings.pool_max_size
        )
        self.registry = Registry()
        self.audit_log = AuditLog(self.actor)
        self._pgbouncer_dsn = pgbouncer_dsn
        with contextlib.suppress(NotConfigured):  # a bad PgBouncer DSN fails now, as any DSN
            AdminSpec.resolve(settings.pgbouncer, pgbouncer_dsn)

    # -- sub-services: each is built, and its modules imported, when first used, so a command
    # loads only what it needs (``tenants list`` none of them) ---------------------------------

    @cached_property
    def runner(self) -> OperationRunner:
        """The one mutation path (validate, read-only guard, lock, audit, events)."""
        from console.core.operations import OperationRunner

        return OperationRunner(self.db, self.audit_log, self.read_only)

    @cached_property
    def binaries(self) -> PgBinaries:
        """The pg_dump/pg_restore the template and backups run."""
        from console.core.binaries import PgBinaries

        return PgBinaries.configured(self.settings.backup.pg_bin_dir)

    @cached_property
    def alembic(self) -> AlembicRunner:
        """The alembic trees (control and tenant) on this cluster."""
        from console.core.migrations.tree import AlembicRunner

        return AlembicRunner(self.spec)

    @cached_property
    def template(self) -> TemplateSchema:
        """The template schema provisioning clones."""
        from console.core.tenants.template import TemplateSchema

        return TemplateSchema(self.spec, self.binaries, self.alembic)

    @cached_property
    def backups(self) -> BackupService:
        """Per-tenant backups: run, list, verify, prune, summaries (lifecycle's final backups
        go through it too)."""
        from console.core.backups.service import BackupService, RestoreContext

        return BackupService(
            self.db,
            self.spec,
            self.binaries,
            self.settings.backup,
            self.runner,
            self.registry,
            self.settings.backup_dir(),
            self.settings.schedule.full_backup,
            restore=RestoreContext(
                self.alembic,
                self.app_role,
                self.settings.lifecycle.lock_timeout,
                self.settings.lifecycle.drain_timeout,
                self.pools if self.pools.configured else None,
            ),
        )

    @cached_property
    def stats(self) -> StatsService:
        """Schema statistics: the hourly collection and its history (sizes, growth)."""
        from console.core.stats.service import StatsService

        return StatsService(self.db, self.runner, self.registry, self.settings.stats)

    @cached_property
    def health(self) -> HealthService:
        """Health checks (``check()``, ``check(record=True)`` for the scheduled job) and their
        recorded samples."""
        from console.core.health.service import HealthService

        return HealthService(
            self.db,
            self.settings.health,
            self.pools,
            self.backups.summaries,
            self.read_only,
        )

    @cached_property
    def pools(self) -> PoolService:
        """PgBouncer pools; ``configured`` is False without an admin DSN and include file."""
        from console.core.pools.service import PoolService

        return PoolService(
            self.settings.pgbouncer, self.db, self.runner, self.registry, self._pgbouncer_dsn
        )

    @cached_property
    def provisioning(self) -> Provisioner:
        """Provisioning, one tenant or many."""
        from console.core.tenants.provision import Provisioner

        return Provisioner(
            self.db,
            self.runner,
            self.registry,
            self.template,
            self.alembic,
            self.app_role,
            self.cluster_name,
            self.pools if self.pools.configured else None,
        )

    @cached_property
    def lifecycle(self) -> Lifecycle:
        """Deactivation, reactivation, offboarding."""
        from console.core.tenants.lifecycle import Lifecycle

        return Lifecycle(
            self.db,
            self.runner,
            self.registry,
            self.backups,
            self.app_role,
            self.settings.lifecycle.lock_timeout,
            self.pools if self.pools.configured else None,
        )

    @cached_property
    def migrations(self) -> MigrationRunner:
        """Migration plans, runs and their history."""
        from console.core.migrations.runner import MigrationRunner

        return MigrationRunner(
            self.db,
            self.runner,
            self.audit_log,
            self.alembic,
            self.template,
            self.settings.lifecycle.lock_timeout,
        )

    @cached_property
    def scheduler(self) -> SchedulerService:
        """The embedded scheduler: host it, run a job now, the schedule, history and leader."""
        from console.core.scheduler.service import SchedulerService

        return SchedulerService(self)

    async def __aenter__(self) -> ConsoleService:
        await self.open()
        return self

    async def open(self) -> None:
        """Open the connection pool (idempotent); ConnectionFailed names the DSN and cause."""
        await self.db.open()

    async def require_initialised(self) -> None:
        """Raise NotInitialised (exit 2) when the cluster has no control schema: every
        command but ``init`` needs the registry."""
        async with self.db.acquire() as conn:
            present = await registry_exists(conn)
        if not present:
            raise NotInitialised(
                f"the cluster at {self.spec.describe()} is not initialised (no public.tenants "
                "registry)",
                hint=RunInit(),
            )

    async def default_server(self) -> str | None:
        """With no DSN anywhere, which server PG* variables and the defaults chose (host or
        socket, port, database, user); None when a DSN was given."""
        return await self.db.chosen_server() if self.spec.from_defaults else None

    async def close(self) -> None:
        """Stop the scheduler, close the connection pool and the PgBouncer admin connection
        (idempotent)."""
        if "scheduler" in vars(self):  # stop its runs and give up the leadership first
            await self.scheduler.stop()
        if "pools" in vars(self):  # built on first use: only then can it hold a connection
            await self.pools.close()
        await self.db.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- mutations (all through OperationRunner) ------------------------------------------

    async def init(self, sink: EventSink = discard) -> InitReport:
        """Apply the control tree, create/verify the app role and limit its privileges to the
        registry interface, build the template."""
        from console.core.bootstrap import initialize

        return await initialize(
            self.db,
            self.runner,
            self.alembic,
            self.template,
            self.app_role,
            self.settings.security.public_config_fields,
            sink,
        )

    async def provision(
        self,
        key: str,
        display_name: str | None = None,
        sink: EventSink = discard,
        use_template: bool = True,
    ) -> Tenant:
        """See :meth:`Provisioner.provision`."""
        return await self.provisioning.provision(key, display_name, sink, use_template)

    async def check_new_key(self, key: str) -> Tenant | None:
        """See :meth:`Provisioner.check_new_key`."""
        return await self.provisioning.check_new_key(key)

    async def provision_many(
        self,
        keys: Sequence[str],
        sink: EventSink = discard,
        use_template: bool = True,
        concurrency: int | None = None,
        names: Mapping[str, str] | None = None,
        progress: BulkProgress | None = None,
    ) -> BulkReport:
        """See :meth:`Provisioner.provision_many`; ``concurrency`` defaults to
        ``lifecycle.provision_concurrency``."""
        workers = (
            self.settings.lifecycle.provision_concurrency if concurrency is None else concurrency
        )
        return await self.provisioning.provision_many(
            keys, sink, use_template, workers, names, progress
        )

    async def deactivate(
        self,
        key: str,
        timeout: float | None = None,
        force: bool = False,
        sink: EventSink = discard,
    ) -> Tenant:
        """See :meth:`Lifecycle.deactivate`."""
        wait = self.settings.lifecycle.drain_timeout if timeout is None else timeout
        return await self.lifecycle.deactivate(key, wait, force, sink)

    async def reactivate(self, key: str, sink: EventSink = discard) -> Tenant:
        """See :meth:`Lifecycle.reactivate`."""
        return await self.lifecycle.reactivate(key, sink)

    async def offboard(
        self,
        key: str,
        timeout: float | None = None,
        force: bool = False,
        sink: EventSink = discard,
    ) -> OffboardReport:
        """See :meth:`Lifecycle.offboard`."""
        wait = self.settings.lifecycle.drain_timeout if timeout is None else timeout
        return await self.lifecycle.offboard(key, wait, force, sink)

    # -- reads ------------------------------------------------------------------------------

    async def tenants(self, status: TenantStatus | None = None) -> list[Tenant]:
        """Registry rows, by key."""
        async with self.db.acquire() as conn:
            return await self.registry.list(conn, status)

    async def tenant(self, key: str) -> Tenant | None:
        """One registry row; None when ``key`` is not registered."""
        async with self.db.acquire() as conn:
            return await self.registry.get(conn, key)

    async def tenant_detail(self, key: str) -> TenantDetail:
        """Registry row, tables with sizes/row estimates/RLS state, recent audit, backups."""
        from console.core.tenants.detail import tenant_detail

        async with self.db.acquire() as conn:
            return await tenant_detail(conn, self.registry, self.audit_log, key)

    async def audit(self, key: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """Audit entries, newest first."""
        async with self.db.acquire() as conn:
            if key is not None:
                await self.registry.require(conn, key)
            return await self.audit_log.recent(conn, key, limit)

    async def overview(self) -> list[TenantRow]:
        """Every tenant with table counts, row estimates and last backup, from a fixed number
        of queries whatever the tenant count (sizes and revisions: :meth:`schema_facts`)."""
        from console.core.tenants.overview import overview

        async with self.db.acquire() as conn:
            return await overview(conn, self.registry)

    async def schema_facts(self) -> tuple[dict[str, SchemaStats], dict[str, str]]:
        """Stats with sizes, and revisions, of every tenant schema (one catalog pass each;
        ~0.3 s per 2,000 schemas, so screens fetch them less often than the registry)."""
        async with self.db.acquire() as conn:
            return await schema_stats(conn, with_sizes=True), await schema_revisions(conn)

    async def check_privileges(self) -> PrivilegeReport:
        """What the application role holds outside its tenant schemas, and what is wrong."""
        from console.core.security.privileges import check_privileges

        async with self.db.acquire() as conn:
            return await check_privileges(conn, self.app_role)

    async def cluster_role(self) -> str:
        """``primary`` or ``replica`` (from pg_is_in_recovery)."""
        return "replica" if await self.db.in_recovery() else "primary"

    async def ping(self) -> None:
        """``SELECT 1`` on the pool, bounded by the connect timeout: the console's health probe.

        Raises ConnectionFailed (naming the DSN and the cause) when the cluster does not answer.
        """
        await self.db.ping()

    @property
    def pgbouncer_watched(self) -> bool:
        """Whether a PgBouncer admin DSN is set, so :meth:`ping_pgbouncer` can probe it."""
        return self.pools.spec is not None

    async def ping_pgbouncer(self) -> None:
        """``SHOW VERSION`` on the reused admin connection (bounded by its command timeout);
        raises PgBouncerUnavailable when PgBouncer does not answer. Cancelled mid-connect or
        mid-query, it leaves no connection open."""
        await self.pools.admin.show("VERSION")

    async def registry_signature(self) -> tuple[int, object]:
        """(row count, latest updated_at) of the registry: changes whenever a tenant is added
        or changes, so a screen can skip reloading 100,000 rows when nothing moved."""
        async with self.db.acquire() as conn:
            return await self.registry.signature(conn)

    async def busy_tenants(self) -> dict[str, str]:
        """Tenants whose advisory lock is held right now: key -> who and since when."""
        async with self.db.acquire() as conn:
            return await locks.busy_tenants(conn)

    async def audit_filtered(
        self,
        key: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """Audit entries newest first, filtered by tenant key prefix, action prefix and actor."""
        async with self.db.acquire() as conn:
            return await self.audit_log.search(conn, key, action, actor, limit, key_prefix=True)
