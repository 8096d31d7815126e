"""Reading the statistics history: each tenant's newest figures and its size growth over a
week, for the ``stats`` command and the tenants screens, from one query whatever the count.

Every collection stamps all tenants with the same time, so "newest" is one run (the newest at
or before ``now``) and the growth baseline another: the newest run at least ``GROWTH_DAYS``
before it, if one falls within a day of that mark (an older one would not be a week's growth).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from console.core.errors import InvalidInput

GROWTH_DAYS = 7
ORDERS = ("size", "growth")
MAX_TOP = 100_000

_READ = """
WITH latest AS (
    SELECT max(collected_at) AS at FROM public.schema_stats WHERE collected_at <= $1
), base AS (
    SELECT max(s.collected_at) AS at FROM public.schema_stats s, latest
    WHERE s.collected_at <= latest.at - $2::interval
      AND s.collected_at >= latest.at - $2::interval - interval '1 day'
)
SELECT t.key, n.collected_at, n.tables, n.total_bytes, n.estimated_rows,
       {table_rows} AS table_rows,
       n.total_bytes - b.total_bytes AS growth_bytes, b.collected_at AS baseline_at
FROM latest
JOIN public.schema_stats n ON n.collected_at = latest.at
JOIN public.tenants t ON t.id = n.tenant_id
CROSS JOIN base
LEFT JOIN public.schema_stats b ON b.collected_at = base.at AND b.tenant_id = n.tenant_id
WHERE $3::text IS NULL OR t.key = $3
ORDER BY {order}, t.key
LIMIT $4
"""
_ORDER = {
    "size": "n.total_bytes DESC",
    "growth": "n.total_bytes - b.total_bytes DESC NULLS LAST",
}


@dataclass(frozen=True)
class TenantStats:
    """One tenant's newest figures; ``growth_bytes`` is None without a baseline a week
    earlier; ``table_rows`` (table -> row estimate) only when asked for."""

    key: str
    collected_at: datetime
    tables: int
    total_bytes: int
    estimated_rows: int
    growth_bytes: int | None
    baseline_at: datetime | None
    table_rows: dict[str, int] | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "key": self.key,
            "collected_at": self.collected_at.isoformat(),
            "tables": self.tables,
            "total_bytes": self.total_bytes,
            "estimated_rows": self.estimated_rows,
            "growth_bytes": self.growth_bytes,
            "baseline_at": self.baseline_at.isoformat() if self.baseline_at else None,
            **({} if self.table_rows is None else {"table_rows": self.table_rows}),
        }


def check_top(n: int, by: str) -> None:
    """InvalidInput unless ``n`` is 1..MAX_TOP and ``by`` one of ORDERS."""
    if not 1 <= n <= MAX_TOP:
        raise InvalidInput(f"the number of tenants to list must be 1 to {MAX_TOP}, got {n}")
    if by not in ORDERS:
        raise InvalidInput(f"tenants are ordered by {' or '.join(ORDERS)}, not {by!r}")


async def read_stats(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    by: str = "size",
    limit: int | None = None,
    key: str | None = None,
    with_tables: bool = False,
) -> list[TenantStats]:
    """The newest figures at ``now`` of every tenant (or of ``key``), largest (or fastest
    growing) first, at most ``limit``; empty before the first collection."""
    sql = _READ.format(
        order=_ORDER[by], table_rows="n.table_rows" if with_tables else "NULL::jsonb"
    )
    rows = await conn.fetch(sql, now, timedelta(days=GROWTH_DAYS), key, limit)
    return [
        TenantStats(
            r["key"],
            r["collected_at"],
            r["tables"],
            r["total_bytes"],
            r["estimated_rows"],
            r["growth_bytes"],
            r["baseline_at"],
            r["table_rows"],
        )
        for r in rows
    ]
