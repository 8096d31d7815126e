"""The facade the front ends receive: one object per cluster connection, built from Settings."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from console.config import Settings
from console.core.actor import Actor
from console.core.backups import BackupStore
from console.core.bootstrap import initialize
from console.core.db import ConnectionSpec, Database
from console.core.events import EventSink, discard
from console.core.lifecycle import Lifecycle, OffboardReport
from console.core.operations import OperationRunner
from console.core.pgserver import PgBinaries
from console.core.registry import AuditEntry, AuditLog, Registry, Tenant, TenantStatus
from console.core.schema_tree import VERSION_TABLE, AlembicRunner
from console.core.template import TemplateSchema
from console.core.tenant_schema import schema_revision


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
        self.backups = BackupStore(self.db, self.spec, binaries, settings.backup_dir())
        self.lifecycle = Lifecycle(
            self.db,
            self.runner,
            self.registry,
            self.backups,
            self.template,
            self.alembic,
            self.app_role,
            self.cluster_name,
            settings.lifecycle.lock_timeout,
        )

    async def __aenter__(self) -> ConsoleService:
        await self.db.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.db.close()

    # -- mutations (all through OperationRunner) ------------------------------------------

    async def init(self, sink: EventSink = discard) -> dict[str, Any]:
        """Apply the control tree, create/verify the app role, build the template."""
        return await initialize(
            self.db, self.runner, self.alembic, self.template, self.app_role, sink
        )

    async def provision(
        self,
        key: str,
        display_name: str | None = None,
        sink: EventSink = discard,
        use_template: bool = True,
    ) -> Tenant:
        """See :meth:`Lifecycle.provision`."""
        return await self.lifecycle.provision(key, display_name, sink, use_template)

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

    def backup_root(self) -> Path:
        """Where backups go."""
        return self.backups.root
