"""Where each tenant's backups stand: its newest full and incremental, the length of its newest
chain, its last failure, and whether it is STALE (its newest full is older than the full-backup
schedule's interval plus a grace period, or it has none).

Read in a fixed number of queries whatever the tenant count, in one read-only snapshot.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from console.core.backups.catalog import COLUMNS, FROM, BackupKind, BackupRecord
from console.core.scheduler.triggers import cron_trigger
from console.core.tenants.registry import Registry, TenantStatus

# Fire times looked at to find a schedule's longest gap (a weekday-only schedule's weekend, a
# monthly one's longest month).
_FIRES = 16
# Tenants whose data can go stale: the ones backed up, and the ones on their way out (their
# final backup is taken by deactivate or offboard). ARCHIVED, INITIALIZING and FAILED tenants
# hold no data to protect any more, or yet.
WATCHED = frozenset(
    {
        TenantStatus.ACTIVE,
        TenantStatus.INACTIVE,
        TenantStatus.DEACTIVATING,
        TenantStatus.OFFBOARDING,
    }
)
NEVER_REASON = "never backed up"


class BackupState(enum.StrEnum):
    """A tenant's backup state, in words (the screen never shows colour alone)."""

    OK = "OK"
    STALE = "STALE"
    FAILED = "FAILED"
    NEVER = "NEVER"


def schedule_interval(cron: str, now: datetime) -> timedelta:
    """The longest gap between consecutive fire times of the ``cron`` expression (5-field or
    Quartz) over its next fire times after ``now`` (UTC): a full taken on schedule is never
    older than this."""
    trigger = cron_trigger(cron)
    fires: list[datetime] = []
    previous = None
    for _ in range(_FIRES):
        previous = trigger.get_next_fire_time(previous, previous or now)
        if previous is None:
            break
        fires.append(previous)
    gaps = [later - earlier for earlier, later in itertools.pairwise(fires)]
    return max(gaps, default=timedelta(0))


@dataclass(frozen=True)
class StalePolicy:
    """When a tenant's newest full is too old: ``interval`` (of the full-backup schedule)
    plus ``grace``."""

    cron: str
    interval: timedelta
    grace: timedelta

    @classmethod
    def of(cls, cron: str, grace_hours: float, now: datetime) -> StalePolicy:
        """The policy of schedule ``cron`` with ``grace_hours`` of grace."""
        return cls(cron, schedule_interval(cron, now), timedelta(hours=grace_hours))

    @property
    def limit(self) -> timedelta:
        """The oldest a newest full may be."""
        return self.interval + self.grace

    def reason(
        self, status: TenantStatus, newest_full: datetime | None, now: datetime
    ) -> str | None:
        """Why a tenant of ``status`` whose newest full finished at ``newest_full`` is STALE at
        ``now``, or None when it is not (tenants outside :data:`WATCHED` never are)."""
        if status not in WATCHED:
            return None
        if newest_full is None:
            return NEVER_REASON
        age = now - newest_full
        if age <= self.limit:
            return None
        return (
            f"newest full {_hours(age)} old; limit {_hours(self.limit)} "
            f"({self.cron} + {_hours(self.grace)} grace)"
        )


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


@dataclass(frozen=True)
class Failure:
    """A tenant's most recent failed backup."""

    backup_id: uuid.UUID
    kind: BackupKind
    at: datetime
    error: str


@dataclass(frozen=True)
class TenantBackups:
    """One tenant's backups at a glance."""

    tenant_id: uuid.UUID
    key: str
    status: TenantStatus
    last_full: BackupRecord | None
    last_incremental: BackupRecord | None
    chain_length: int  # incrementals chained on the newest full (0: the full alone, or none)
    last_failure: Failure | None
    failing: bool  # the newest attempt failed (nothing succeeded after the last failure)
    stale_reason: str | None

    @property
    def stale(self) -> bool:
        """Whether the newest full is too old, or missing."""
        return self.stale_reason is not None

    @property
    def states(self) -> tuple[BackupState, ...]:
        """NEVER (no full at all) or STALE, then FAILED; OK alone when none apply."""
        found: list[BackupState] = []
        if self.last_full is None:
            found.append(BackupState.NEVER)
        elif self.stale:
            found.append(BackupState.STALE)
        if self.failing:
            found.append(BackupState.FAILED)
        return tuple(found) or (BackupState.OK,)

    @property
    def state_text(self) -> str:
        """The states in words: ``OK``, ``STALE``, ``NEVER+FAILED``…"""
        return "+".join(state.value for state in self.states)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        failure = self.last_failure
        return {
            "tenant": self.key,
            "status": self.status.value,
            "state": [state.value for state in self.states],
            "stale": self.stale,
            "stale_reason": self.stale_reason,
            "last_full": self.last_full.as_json() if self.last_full else None,
            "last_incremental": (
                self.last_incremental.as_json() if self.last_incremental else None
            ),
            "chain_length": self.chain_length,
            "last_failure": (
                {
                    "id": str(failure.backup_id),
                    "kind": failure.kind.value,
                    "at": failure.at.isoformat(),
                    "error": failure.error,
                }
                if failure
                else None
            ),
        }


_NEWEST = (
    f"SELECT DISTINCT ON (b.tenant_id, b.kind) {COLUMNS} FROM {FROM} "
    "WHERE b.status = 'succeeded' ORDER BY b.tenant_id, b.kind, b.finished_at DESC, b.id"
)
_FAILURES = (
    "SELECT DISTINCT ON (tenant_id) id, tenant_id, kind, started_at, "
    "coalesce(finished_at, started_at) AS at, coalesce(error, 'no error recorded') AS error "
    "FROM public.backups WHERE status = 'failed' ORDER BY tenant_id, started_at DESC, id"
)
# Each tenant's newest full, then the succeeded incrementals chained on it, link by link.
_CHAINS = """
WITH RECURSIVE links AS (
    SELECT * FROM (
        SELECT DISTINCT ON (tenant_id) id, tenant_id, 0 AS depth FROM public.backups
        WHERE kind = 'full' AND status = 'succeeded'
        ORDER BY tenant_id, finished_at DESC, id
    ) newest
    UNION ALL
    SELECT c.id, l.tenant_id, l.depth + 1
    FROM public.backups c JOIN links l ON c.parent_id = l.id
    WHERE c.status = 'succeeded' AND c.kind = 'incremental'
)
SELECT tenant_id, max(depth) AS incrementals FROM links GROUP BY tenant_id
"""


async def read_summaries(
    conn: asyncpg.Connection, policy: StalePolicy, now: datetime
) -> list[TenantBackups]:
    """Every tenant's :class:`TenantBackups`, by key: four queries in one read-only
    snapshot, whatever the tenant count."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        tenants = await Registry().list(conn, with_config=False)
        newest = [BackupRecord.from_row(r) for r in await conn.fetch(_NEWEST)]
        failures = await conn.fetch(_FAILURES)
        chains = await conn.fetch(_CHAINS)
    fulls = {r.tenant_id: r for r in newest if r.kind is BackupKind.FULL}
    incrementals = {r.tenant_id: r for r in newest if r.kind is BackupKind.INCREMENTAL}
    failed = {r["tenant_id"]: r for r in failures}
    lengths: dict[uuid.UUID, int] = {r["tenant_id"]: r["incrementals"] for r in chains}
    found = []
    for tenant in tenants:
        full, incremental = fulls.get(tenant.id), incrementals.get(tenant.id)
        failure = failed.get(tenant.id)
        succeeded = [r.started_at for r in (full, incremental) if r is not None]
        found.append(
            TenantBackups(
                tenant_id=tenant.id,
                key=tenant.key,
                status=tenant.status,
                last_full=full,
                last_incremental=incremental,
                chain_length=lengths.get(tenant.id, 0),
                last_failure=(
                    Failure(
                        failure["id"], BackupKind(failure["kind"]), failure["at"], failure["error"]
                    )
                    if failure
                    else None
                ),
                failing=failure is not None
                and all(failure["started_at"] > started for started in succeeded),
                stale_reason=policy.reason(tenant.status, full.finished_at if full else None, now),
            )
        )
    return found
