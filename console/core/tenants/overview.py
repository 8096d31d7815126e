"""Every tenant at a glance, for the tenants screen: registry rows with table counts, row
estimates and the last backup, from a fixed number of queries whatever the tenant count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from console.core.tenants.registry import Registry, Tenant
from console.core.tenants.stats import SchemaStats, schema_stats


@dataclass(frozen=True)
class TenantRow:
    """A tenant as the tenants screen shows it."""

    tenant: Tenant
    stats: SchemaStats | None
    revision: str | None
    last_backup: datetime | None


async def overview(conn: asyncpg.Connection, registry: Registry) -> list[TenantRow]:
    """Every tenant with table counts, row estimates (no sizes, no revision: slower to read)
    and the end of its last successful backup."""
    tenants = await registry.list(conn, with_config=False)
    stats = await schema_stats(conn, with_sizes=False)
    latest = await conn.fetch(
        "SELECT DISTINCT ON (tenant_id) tenant_id, finished_at FROM public.backups "
        "WHERE status = 'succeeded' ORDER BY tenant_id, finished_at DESC"
    )
    backups: dict[uuid.UUID, datetime] = {r["tenant_id"]: r["finished_at"] for r in latest}
    return [TenantRow(t, stats.get(t.schema_name), None, backups.get(t.id)) for t in tenants]
