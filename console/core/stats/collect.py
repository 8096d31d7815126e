"""One collection of schema statistics: every tenant schema's figures from one catalog pass,
written to ``public.schema_stats`` by the same statement, and the history retention lets go.

The catalog pass is the one of :func:`console.core.tenants.stats.schema_stats` (grouped by
``relnamespace``, the schema name looked up by oid, never one query per tenant) plus each
table's row estimate as a JSON object; the rows never travel to the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from console.core.migrations.tree import VERSION_TABLE

# Sizes of every relation of every schema, summed per schema and joined to the registry by
# name; a tenant whose schema is gone (or not built yet) has no row in this run.
_COLLECT = """
WITH per_schema AS (
    SELECT (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace)::text AS schema,
           count(*)::int4 AS tables,
           sum(pg_total_relation_size(c.oid))::int8 AS total_bytes,
           sum(greatest(c.reltuples, 0))::int8 AS estimated_rows,
           jsonb_object_agg(c.relname, greatest(c.reltuples, 0)::int8) AS table_rows
    FROM pg_class c
    WHERE c.relkind IN ('r', 'p') AND c.relname <> $2
    GROUP BY c.relnamespace
)
INSERT INTO public.schema_stats
    (collected_at, tenant_id, tables, total_bytes, estimated_rows, table_rows)
SELECT $1, t.id, s.tables, s.total_bytes, s.estimated_rows, s.table_rows
FROM per_schema s JOIN public.tenants t ON t.schema_name::text = s.schema
ON CONFLICT (collected_at, tenant_id) DO NOTHING
"""


@dataclass(frozen=True)
class StatsRun:
    """What one collection did: when it was stamped, tenants written, their bytes in all,
    history rows retention removed, and how long it took."""

    collected_at: datetime
    tenants: int
    total_bytes: int
    pruned: int
    duration_s: float

    def summary(self) -> str:
        """One line for a job's output summary."""
        return (
            f"{self.tenants} tenant(s) collected at {self.collected_at.isoformat()[:19]} "
            f"in {self.duration_s:.2f} s; {self.pruned} old row(s) pruned"
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "collected_at": self.collected_at.isoformat(),
            "tenants": self.tenants,
            "total_bytes": self.total_bytes,
            "pruned": self.pruned,
            "duration_s": round(self.duration_s, 3),
        }


async def collect(conn: asyncpg.Connection, now: datetime, retention_days: int) -> StatsRun:
    """Write every tenant schema's figures stamped ``now`` and delete the rows older than
    ``retention_days`` before it, in one transaction. A second run stamped with the same
    ``now`` writes nothing new."""
    started = time.perf_counter()
    async with conn.transaction():
        status = await conn.execute(_COLLECT, now, VERSION_TABLE)
        written = await conn.fetchval(
            "SELECT coalesce(sum(total_bytes), 0)::int8 FROM public.schema_stats "
            "WHERE collected_at = $1",
            now,
        )
        pruned = await conn.execute(
            "DELETE FROM public.schema_stats WHERE collected_at < $1",
            now - timedelta(days=retention_days),
        )
    return StatsRun(now, _count(status), written, _count(pruned), time.perf_counter() - started)


def _count(status: str) -> int:
    """The row count of an ``INSERT 0 n`` / ``DELETE n`` command status."""
    return int(status.rsplit(" ", 1)[-1])
