"""Checks of the server itself, from two round trips: ``SELECT 1`` latency, then one query
for role, version, uptime, connections, idle-in-transaction sessions, the longest query,
lock waits and transaction ID wraparound."""

from __future__ import annotations

import time

import asyncpg

from console.config import HealthSettings
from console.core.health.model import Check, State, grade, limits

_FACTS = """
SELECT pg_is_in_recovery() AS standby,
       current_setting('server_version') AS version,
       extract(epoch FROM now() - pg_postmaster_start_time()) AS uptime_s,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int
         AS reserved,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       (SELECT max(age(datfrozenxid)) FROM pg_database) AS oldest_xid_age,
       (SELECT datname FROM pg_database ORDER BY age(datfrozenxid) DESC LIMIT 1) AS oldest_db,
       a.*
FROM (
    SELECT count(*) AS used,
           count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_tx,
           extract(epoch FROM max(now() - state_change)
               FILTER (WHERE state LIKE 'idle in transaction%')) AS idle_in_tx_s,
           extract(epoch FROM max(now() - query_start)
               FILTER (WHERE state = 'active' AND pid <> pg_backend_pid())) AS longest_s,
           count(*) FILTER (WHERE wait_event_type = 'Lock') AS blocked
    FROM pg_stat_activity WHERE backend_type = 'client backend'
) a
"""


def seconds(value: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``, ``4.0 d`` (a clock a hair behind reads 0, not -0)."""
    value = max(value, 0.0)
    if value < 120:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    if value < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


async def select1_check(conn: asyncpg.Connection, timeout: float, h: HealthSettings) -> Check:
    """``SELECT 1`` round trip in milliseconds."""
    started = time.perf_counter()
    await conn.fetchval("SELECT 1", timeout=timeout)
    rtt_ms = (time.perf_counter() - started) * 1000
    return Check(
        "connectivity",
        "server",
        grade(rtt_ms, h.select1_warn_ms, h.select1_crit_ms),
        f"{rtt_ms:.1f} ms",
        limits(h.select1_warn_ms, h.select1_crit_ms, " ms"),
        "connected; SELECT 1 round trip",
        rtt_ms,
    )


async def server_checks(conn: asyncpg.Connection, h: HealthSettings) -> tuple[bool, list[Check]]:
    """(whether the server is a standby, its checks)."""
    row = await conn.fetchrow(_FACTS)
    assert row is not None
    standby = bool(row["standby"])
    allowed = max(row["max_connections"] - row["reserved"], 1)
    used = int(row["used"])
    pct = 100.0 * used / allowed
    idle_n, idle_s = int(row["idle_in_tx"]), float(row["idle_in_tx_s"] or 0)
    longest = float(row["longest_s"] or 0)
    blocked = int(row["blocked"])
    xid_pct = 100.0 * float(row["oldest_xid_age"]) / max(int(row["freeze_max_age"]), 1)
    checks = [
        Check(
            "role",
            "server",
            State.OK,
            "standby" if standby else "primary",
            detail=f"PostgreSQL {row['version']}",
        ),
        Check(
            "uptime",
            "server",
            State.OK,
            seconds(float(row["uptime_s"])),
            detail="since the postmaster started",
            value=float(row["uptime_s"]),
        ),
        Check(
            "connections",
            "connections",
            grade(pct, h.connections_warn_pct, h.connections_crit_pct),
            f"{used} of {allowed} ({pct:.0f}%)",
            limits(h.connections_warn_pct, h.connections_crit_pct, "%"),
            f"client backends vs max_connections {row['max_connections']} minus "
            f"{row['reserved']} reserved",
            float(used),
        ),
        Check(
            "idle_in_transaction",
            "connections",
            grade(idle_s, h.idle_in_transaction_warn_s, h.idle_in_transaction_crit_s),
            f"{idle_n} (oldest {seconds(idle_s)})" if idle_n else "none",
            limits(h.idle_in_transaction_warn_s, h.idle_in_transaction_crit_s, " s"),
            "sessions idle inside a transaction, by the oldest",
            idle_s,
        ),
        Check(
            "longest_query",
            "connections",
            grade(longest, h.long_query_warn_s, h.long_query_crit_s),
            seconds(longest) if longest else "none running",
            limits(h.long_query_warn_s, h.long_query_crit_s, " s"),
            "the longest running statement",
            longest,
        ),
        Check(
            "blocked",
            "connections",
            grade(blocked, h.blocked_warn, h.blocked_crit),
            f"{blocked} waiting on locks",
            limits(h.blocked_warn, h.blocked_crit),
            "sessions waiting for a lock",
            float(blocked),
        ),
        Check(
            "wraparound",
            "server",
            grade(xid_pct, h.wraparound_warn_pct, h.wraparound_crit_pct),
            f"{int(row['oldest_xid_age']):,} ({xid_pct:.0f}%)",
            limits(h.wraparound_warn_pct, h.wraparound_crit_pct, "%"),
            f"age(datfrozenxid) of {row['oldest_db']} vs autovacuum_freeze_max_age "
            f"{int(row['freeze_max_age']):,}",
            xid_pct,
        ),
    ]
    return standby, checks
