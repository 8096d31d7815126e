"""``health_samples``: each recorded check's value and state, kept for
``health.sample_retention_hours``, read back as graph series and as "in this state since"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from console.core.health.model import Check

_INSERT = (
    "INSERT INTO public.health_samples (taken_at, check_name, state, value, detail) "
    "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::float8[], $5::text[]) "
    "ON CONFLICT (check_name, taken_at) DO NOTHING"
)
_PRUNE = "DELETE FROM public.health_samples WHERE taken_at < $1"
_SERIES = (
    "SELECT check_name, taken_at, value FROM public.health_samples "
    "WHERE check_name = any($1::text[]) AND taken_at >= $2 AND value IS NOT NULL "
    "ORDER BY check_name, taken_at"
)
# Per check: the newest sample in another state than the newest sample's, then the first
# sample after it: when the check entered its current state.
_SINCE = """
WITH latest AS (
    SELECT DISTINCT ON (check_name) check_name, state
    FROM public.health_samples ORDER BY check_name, taken_at DESC
), changed AS (
    SELECT l.check_name, l.state,
           (SELECT max(s.taken_at) FROM public.health_samples s
            WHERE s.check_name = l.check_name AND s.state <> l.state) AS before
    FROM latest l
)
SELECT c.check_name, c.state,
       (SELECT min(s.taken_at) FROM public.health_samples s
        WHERE s.check_name = c.check_name AND (c.before IS NULL OR s.taken_at > c.before)) AS since
FROM changed c
"""

Series = dict[str, list[tuple[datetime, float]]]


async def record(
    conn: asyncpg.Connection, taken_at: datetime, checks: Sequence[Check], keep: timedelta
) -> None:
    """Write one sample per check and delete samples older than ``keep``."""
    async with conn.transaction():
        await conn.execute(
            _INSERT,
            taken_at,
            [c.name for c in checks],
            [c.state.value for c in checks],
            [c.value for c in checks],
            [c.detail for c in checks],
        )
        await conn.execute(_PRUNE, taken_at - keep)


async def series(conn: asyncpg.Connection, names: Sequence[str], since: datetime) -> Series:
    """``name -> [(taken_at, value)]`` of the checks ``names`` since ``since``, oldest first."""
    found: Series = {name: [] for name in names}
    for row in await conn.fetch(_SERIES, list(names), since):
        found[row["check_name"]].append((row["taken_at"], row["value"]))
    return found


async def states_since(conn: asyncpg.Connection) -> dict[str, tuple[str, datetime]]:
    """``name -> (state, since)``: each recorded check's newest state and when it began."""
    return {r["check_name"]: (r["state"], r["since"]) for r in await conn.fetch(_SINCE)}
