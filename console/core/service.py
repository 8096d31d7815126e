"""The facade the front ends receive: one object per cluster connection, built from Settings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import asyncpg

from console.config import Settings
from console.core import locks
from console.core.actor import Actor
from console.core.audit import AuditEntry, AuditLog
from console.core.backups.service import BackupService
from console.core.binaries import PgBinaries
from console.core.bootstrap import initialize
from console.core.db import ConnectionSpec, Database, connection_failed
from console.core.errors import NotInitialised
from console.core.events import EventSink, discard
from console.core.migrations.runner import MigrationRunner
from console.core.migrations.tree import VERSION_TABLE, AlembicRunner
from console.core.operations import OperationRunner
from console.core.pools.service import PoolService
from console.core.security.privileges import PrivilegeReport, check_privileges
from console.core.tenants.bulk_report import BulkProgress, BulkReport
from console.core.tenants.lifecycle import Lifecycle, OffboardReport
from console.core.tenants.provision import Provisioner
from console.core.tenants.registry import Registry, Tenant, TenantStatus
from console.core.tenants.schema import schema_revision
from console.core.tenants.stats import SchemaStats, schema_revisions, schema_stats
from console.core.tenants.template import TemplateSchema


@dataclass(frozen=True)
class TenantRow:
    """A tenant as the tenants screen shows it."""

    tenant: Tenant
    stats: SchemaStats | None
    revision: str | None
    last_backup: datetime | None


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
        self.runner = OperationRunner(self.db, self.audit_log, self.read_only)
        binaries = PgBinaries.configured(settings.backup.pg_bin_dir)
        self.alembic = AlembicRunner(self.spec)
        self.template = TemplateSchema(self.spec, binaries, self.alembic)
        self.backups = BackupService(
            self.db,
            self.spec,
            binaries,
            settings.backup,
            self.runner,
            self.registry,
            settings.backup_dir(),
        )
        self.pools = PoolService(
            settings.pgbouncer, self.db, self.runner, self.registry, pgbouncer_dsn
        )
        self.provisioning = Provisioner(
            self.db,
            self.runner,
            self.registry,
            self.template,
            self.alembic,
            self.app_role,
            self.cluster_name,
            self.pools if self.pools.configured else None,
        )
        self.lifecycle = Lifecycle(
            self.db,
            self.runner,
            self.registry,
            self.backups,
            self.app_role,
            settings.lifecycle.lock_timeout,
            self.pools if self.pools.configured else None,
        )

        self.migrations = MigrationRunner(
            self.db,
            self.runner,
            self.audit_log,
            self.alembic,
            self.template,
            settings.lifecycle.lock_timeout,
        )

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
            present = await conn.fetchval("SELECT to_regclass('public.tenants') IS NOT NULL")
        if not present:
            raise NotInitialised(
                f"the cluster at {self.spec.describe()} is not initialised (no public.tenants "
                "registry); run 'goconsole init' with the same connection options first"
            )

    async def default_server(self) -> str | None:
        """With no DSN anywhere, which server PG* variables and the defaults chose (host or
        socket, port, database, user); None when a DSN was given."""
        return await self.db.chosen_server() if self.spec.from_defaults else None

    async def close(self) -> None:
        """Close the connection pool and the PgBouncer admin connection (idempotent)."""
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

    async def init(self, sink: EventSink = discard) -> dict[str, Any]:
        """Apply the control tree, create/verify the app role and limit its privileges to the
        registry interface, build the template."""
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

    async def tenant_detail(self, key: str) -> dict[str, Any]:
        """Registry row, tables with sizes/row estimates/RLS state, recent audit, backups."""
        async with self.db.acquire() as conn:
            tenant = await self.registry.require(conn, key)
            tables = await conn.fetch(
                """
                SELECT c.relname AS table, greatest(c.reltuples, 0)::bigint AS estimated_rows,
                       pg_total_relation_size(c.oid) AS bytes,
                       c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
                FROM pg_class c
                WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
                  AND c.relkind IN ('r', 'p') AND c.relname <> $2
                ORDER BY c.relname
                """,
                tenant.schema_name,
                VERSION_TABLE,
            )
            _, revision = await schema_revision(conn, tenant.schema_name)
            backups = await conn.fetch(
                "SELECT kind, status, started_at, bytes, sha256, location, verify_result "
                "FROM public.backups WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT 5",
                tenant.id,
            )
            audit = await self.audit_log.recent(conn, key, 10)
        return {
            "tenant": tenant.as_json(),
            "revision": revision,
            "tables": [dict(r) for r in tables],
            "backups": [{**dict(r), "started_at": r["started_at"].isoformat()} for r in backups],
            "audit": [a.as_json() for a in audit],
        }

    async def audit(self, key: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """Audit entries, newest first."""
        async with self.db.acquire() as conn:
            if key is not None:
                await self.registry.require(conn, key)
            return await self.audit_log.recent(conn, key, limit)

    async def overview(self) -> list[TenantRow]:
        """Every tenant with table counts, row estimates and last backup, from a fixed number
        of queries whatever the tenant count (sizes and revisions: :meth:`schema_facts`)."""
        async with self.db.acquire() as conn:
            tenants = await self.registry.list(conn, with_config=False)
            stats = await schema_stats(conn, with_sizes=False)
            latest = await conn.fetch(
                "SELECT DISTINCT ON (tenant_id) tenant_id, finished_at FROM public.backups "
                "WHERE status = 'succeeded' ORDER BY tenant_id, finished_at DESC"
            )
        backups: dict[uuid.UUID, datetime] = {r["tenant_id"]: r["finished_at"] for r in latest}
        return [TenantRow(t, stats.get(t.schema_name), None, backups.get(t.id)) for t in tenants]

    async def schema_facts(self) -> tuple[dict[str, SchemaStats], dict[str, str]]:
        """Stats with sizes, and revisions, of every tenant schema (one catalog pass each;
        ~0.3 s per 2,000 schemas, so screens fetch them less often than the registry)."""
        async with self.db.acquire() as conn:
            return await schema_stats(conn, with_sizes=True), await schema_revisions(conn)

    async def check_privileges(self) -> PrivilegeReport:
        """What the application role holds outside its tenant schemas, and what is wrong."""
        async with self.db.acquire() as conn:
            return await check_privileges(conn, self.app_role)

    async def cluster_role(self) -> str:
        """``primary`` or ``replica`` (from pg_is_in_recovery)."""
        async with self.db.acquire() as conn:
            return "replica" if await conn.fetchval("SELECT pg_is_in_recovery()") else "primary"

    async def ping(self) -> None:
        """``SELECT 1`` on the pool, bounded by the connect timeout: the console's health probe.

        Raises ConnectionFailed (naming the DSN and the cause) when the cluster does not answer.
        """
        try:
            async with self.db.acquire() as conn:
                await conn.fetchval("SELECT 1", timeout=self.spec.connect_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connection_failed(self.spec, exc) from exc

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
            row = await conn.fetchrow("SELECT count(*), max(updated_at) FROM public.tenants")
        assert row is not None
        return (row[0], row[1])

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
