"""Checks of what surrounds the cluster: PgBouncer's pools (unreachable is a finding), backup
freshness and failures, and the scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from console.config import HealthSettings
from console.core.errors import ConsoleError
from console.core.health.model import Check, State, grade, limits
from console.core.pools.rows import parse_pools
from console.core.scheduler.leader import current_leader

if TYPE_CHECKING:
    from console.core.backups.summary import TenantBackups
    from console.core.pools.reads import PoolReads


async def pool_check(pools: PoolReads, h: HealthSettings) -> Check:
    """Clients waiting and the longest wait over every pool (one ``SHOW POOLS``)."""
    threshold = limits(h.pool_wait_warn_ms, h.pool_wait_crit_ms, " ms")
    if not pools.monitored:
        return Check("pgbouncer", "pools", State.OK, "not configured", threshold)
    try:
        rows = parse_pools(await pools.admin.show("POOLS"))
    except ConsoleError as exc:
        return Check("pgbouncer", "pools", State.CRIT, "unreachable", threshold, exc.message)
    rows.pop("pgbouncer", None)
    waiting = sum(p.cl_waiting for p in rows.values())
    worst_pool = max(rows.values(), key=lambda p: p.maxwait_us, default=None)
    wait_ms = worst_pool.maxwait_us / 1000 if worst_pool else 0.0
    detail = f"{len(rows)} pools"
    if worst_pool is not None and wait_ms > 0:
        detail += f"; longest wait in {worst_pool.database}"
    return Check(
        "pgbouncer",
        "pools",
        grade(wait_ms, h.pool_wait_warn_ms, h.pool_wait_crit_ms),
        f"{waiting} waiting, maxwait {wait_ms:.0f} ms",
        threshold,
        detail,
        wait_ms,
    )


def backup_check(summaries: list[TenantBackups], h: HealthSettings, now: datetime) -> Check:
    """Tenants (ACTIVE or on their way out) with no successful full within
    ``health.backup_max_age_hours`` (WARN), and tenants whose newest backup failed or whose
    newest full failed its restore drill (CRIT)."""
    from console.core.backups.summary import WATCHED

    limit = timedelta(hours=h.backup_max_age_hours)
    watched = [s for s in summaries if s.status in WATCHED]
    stale = [
        s.key
        for s in watched
        if s.last_full is None
        or s.last_full.finished_at is None
        or now - s.last_full.finished_at > limit
    ]
    failing = [s.key for s in watched if s.failing]
    # a restore drill (or restore test) of the newest full that did not give the data back
    undrillable = [
        s.key
        for s in watched
        if s.last_full is not None
        and s.last_full.verify_level == "restore"
        and s.last_full.verify_result not in (None, "ok")
    ]
    state = State.CRIT if failing or undrillable else State.WARN if stale else State.OK
    parts = []
    if stale:
        parts.append(f"stale: {_names(stale)}")
    if failing:
        parts.append(f"failing: {_names(failing)}")
    if undrillable:
        parts.append(f"drill failed: {_names(undrillable)}")
    return Check(
        "backups",
        "backups",
        state,
        f"{len(stale)} stale, {len(failing)} failing, {len(undrillable)} drill failed "
        f"of {len(watched)}",
        f"a full within {h.backup_max_age_hours:g} h; a failed backup or drill is CRIT",
        "; ".join(parts) or "every tenant has a recent full",
        float(len(stale) + len(failing) + len(undrillable)),
    )


def _names(keys: list[str], shown: int = 5) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


async def scheduler_check(conn: asyncpg.Connection) -> Check:
    """The scheduler as the cluster sees it, whichever console hosts it: a leader present (the
    leader lock held), and each job's newest run: failed is CRIT, missed WARN, no leader WARN."""
    leader = await current_leader(conn)
    newest = await conn.fetch(
        "SELECT DISTINCT ON (job) job, outcome FROM public.job_runs "
        "ORDER BY job, coalesce(scheduled_at, started_at) DESC"
    )
    failed = sorted(r["job"] for r in newest if r["outcome"] == "failed")
    missed = sorted(r["job"] for r in newest if r["outcome"] == "missed")
    shown = f"leader {leader.describe()}" if leader else "no leader"
    if failed:
        return Check("scheduler", "jobs", State.CRIT, shown, "", f"failed: {', '.join(failed)}")
    if missed:
        return Check("scheduler", "jobs", State.WARN, shown, "", f"missed: {', '.join(missed)}")
    if leader is None:
        detail = "no console or `scheduler run` leads this cluster: scheduled jobs do not run"
        return Check("scheduler", "jobs", State.WARN, shown, "", detail)
    return Check("scheduler", "jobs", State.OK, shown)
