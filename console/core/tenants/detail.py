"""One tenant in detail: its registry row, schema revision, tables (sizes, row estimates, RLS),
latest backups and audit entries, read in one go for ``tenants show`` and the tenant screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from console.core.audit import AuditEntry, AuditLog
from console.core.migrations.tree import VERSION_TABLE
from console.core.tenants.registry import Registry, Tenant
from console.core.tenants.schema import schema_revision

BACKUPS_SHOWN = 5
AUDIT_SHOWN = 10


@dataclass(frozen=True)
class TableFacts:
    """One table of a tenant schema: estimated rows, size with indexes, row-level security."""

    table: str
    estimated_rows: int
    bytes: int
    rls_enabled: bool
    rls_forced: bool
    policies: int

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "table": self.table,
            "estimated_rows": self.estimated_rows,
            "bytes": self.bytes,
            "rls_enabled": self.rls_enabled,
            "rls_forced": self.rls_forced,
            "policies": self.policies,
        }


@dataclass(frozen=True)
class BackupRow:
    """One backup of a tenant as listed (running, succeeded or failed)."""

    kind: str
    status: str
    started_at: datetime
    bytes: int | None
    sha256: str | None
    location: str | None
    verify_result: str | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "location": self.location,
            "verify_result": self.verify_result,
        }


@dataclass(frozen=True)
class TenantDetail:
    """What ``tenants show`` prints and the tenant screen shows (``revision`` None: no schema
    or no version row); backups and audit entries newest first."""

    tenant: Tenant
    revision: str | None
    tables: list[TableFacts]
    backups: list[BackupRow]
    audit: list[AuditEntry]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (what ``tenants show --json`` prints)."""
        return {
            "tenant": self.tenant.as_json(),
            "revision": self.revision,
            "tables": [t.as_json() for t in self.tables],
            "backups": [b.as_json() for b in self.backups],
            "audit": [a.as_json() for a in self.audit],
        }


async def tenant_detail(
    conn: asyncpg.Connection, registry: Registry, audit: AuditLog, key: str
) -> TenantDetail:
    """The tenant with ``key`` in detail (NotFound when it is not registered)."""
    tenant = await registry.require(conn, key)
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
        "FROM public.backups WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT $2",
        tenant.id,
        BACKUPS_SHOWN,
    )
    return TenantDetail(
        tenant,
        revision,
        [TableFacts(**dict(r)) for r in tables],
        [BackupRow(**dict(r)) for r in backups],
        await audit.recent(conn, key, AUDIT_SHOWN),
    )
