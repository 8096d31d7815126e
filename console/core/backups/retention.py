"""Retention: which of a tenant's backups to remove, and why (a pure planner).

The meaning is pgBackRest's time-based retention, per tenant:

- every full taken within ``full_days`` is kept, plus the newest full older than that, so every
  point inside the window stays restorable;
- every incremental taken within ``incremental_days`` is kept, plus the newest link (of any
  kind) older than that window when it is an incremental, for the same reason;
- keeping a link keeps every earlier link of its chain (removing an incremental in the middle
  would break the later ones), so an incremental is only removed together with every later link
  of its chain; an incremental whose full is removed goes with it;
- the last verified backup is never removed: when the rules above would remove every verified
  backup of a tenant, its newest verified one (and its chain up to it) is kept;
- an ARCHIVED tenant's backups are not subject to the windows above: they are kept for
  ``archived_days`` after the tenant was archived, then all removed (0 keeps them for ever).
  The tenant is gone, so the verified-backup rule (meant for tenants in service) yields to the
  operator's archive retention.

A backup's time is its ``covers_until`` (the point it restores to), else its start. Only
succeeded backups are considered: failed and running ones hold no files, expired ones are gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from console.config import BackupSettings
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.tenants.registry import TenantStatus


@dataclass(frozen=True)
class RetentionPolicy:
    """The retention windows, in days (``archived_days`` 0: keep an archived tenant's)."""

    full_days: int
    incremental_days: int
    archived_days: int

    @classmethod
    def from_settings(cls, settings: BackupSettings) -> RetentionPolicy:
        """The policy configured in ``[backup]``."""
        return cls(
            settings.full_retention_days,
            settings.incremental_retention_days,
            settings.archived_retention_days,
        )


@dataclass(frozen=True)
class Removal:
    """One backup retention removes, and why."""

    record: BackupRecord
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    """What retention does to one tenant: removals newest first (a link before its parent), and
    notes on backups kept only by a safety rule."""

    removals: tuple[Removal, ...]
    notes: tuple[str, ...] = ()


def point_of(record: BackupRecord) -> datetime:
    """The time a backup restores to (``covers_until``, else its start)."""
    return record.covers_until or record.started_at


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(backup_id: uuid.UUID) -> str:
    return str(backup_id)[:8]


class _Chains:
    """The succeeded links of one tenant, with each link's ancestors."""

    def __init__(self, records: Iterable[BackupRecord]) -> None:
        self.links = {r.id: r for r in records if r.status is BackupStatus.SUCCEEDED}

    def ancestors(self, record: BackupRecord) -> list[BackupRecord]:
        """The link and every earlier link of its chain that is still a succeeded backup."""
        found = [record]
        while found[-1].parent_id is not None and found[-1].parent_id in self.links:
            found.append(self.links[found[-1].parent_id])
        return found

    def full_of(self, record: BackupRecord) -> BackupRecord | None:
        """The full a link's chain starts from (None when the chain is broken)."""
        root = self.ancestors(record)[-1]
        return root if root.kind is BackupKind.FULL else None


def plan(
    records: Sequence[BackupRecord],
    policy: RetentionPolicy,
    now: datetime,
    status: TenantStatus,
    archived_at: datetime | None = None,
) -> RetentionPlan:
    """The removals retention makes among one tenant's catalog ``records`` at ``now``
    (``status``: the tenant's; ``archived_at``: when it was archived, for ARCHIVED)."""
    chains = _Chains(records)
    links = sorted(chains.links.values(), key=point_of)
    if status is TenantStatus.ARCHIVED:
        return _plan_archived(links, policy, now, archived_at)
    full_start = now - timedelta(days=policy.full_days)
    incr_start = now - timedelta(days=policy.incremental_days)
    reasons: dict[uuid.UUID, str] = {}
    kept: set[uuid.UUID] = set()

    fulls = [r for r in links if r.kind is BackupKind.FULL]
    older = [r for r in fulls if point_of(r) < full_start]
    kept.update(r.id for r in fulls if point_of(r) >= full_start)
    if older:
        kept.add(older[-1].id)
    for full in older[:-1]:
        reasons[full.id] = (
            f"full of {_day(point_of(full))} is older than the {policy.full_days}-day full "
            f"retention and a newer full ({_short(older[-1].id)}) covers the window's start"
        )

    wanted = [r for r in links if r.kind is BackupKind.INCREMENTAL and point_of(r) >= incr_start]
    before = [r for r in links if point_of(r) < incr_start]
    if before and before[-1].kind is BackupKind.INCREMENTAL:
        wanted.append(before[-1])  # the point at the window's start restores from it
    for incremental in wanted:
        root = chains.full_of(incremental)
        if root is None or root.id in kept:  # a broken chain's links follow the window
            kept.update(link.id for link in chains.ancestors(incremental))

    notes: list[str] = []
    verified = [r for r in links if r.verified]
    if verified and not any(r.id in kept for r in verified):
        last = verified[-1]
        kept.update(link.id for link in chains.ancestors(last))
        notes.append(
            f"kept {last.kind.value} {_short(last.id)} of {_day(point_of(last))}"
            " (and its chain): the tenant's last verified backup"
        )

    removals = []
    for record in reversed(links):
        if record.id in kept:
            continue
        removals.append(
            Removal(record, reasons.get(record.id) or _why(record, chains, kept, policy))
        )
    return RetentionPlan(tuple(removals), tuple(notes))


def _why(
    record: BackupRecord, chains: _Chains, kept: set[uuid.UUID], policy: RetentionPolicy
) -> str:
    full = chains.full_of(record)
    if record.kind is BackupKind.INCREMENTAL and full is not None and full.id not in kept:
        return f"goes with its full {_short(full.id)}, which is removed"
    if record.kind is BackupKind.INCREMENTAL and full is None:
        return (
            f"incremental of {_day(point_of(record))} is older than the "
            f"{policy.incremental_days}-day incremental retention and its chain is broken"
        )
    return (
        f"incremental of {_day(point_of(record))} is older than the "
        f"{policy.incremental_days}-day incremental retention, as is every later link of its chain"
    )


def _plan_archived(
    links: list[BackupRecord],
    policy: RetentionPolicy,
    now: datetime,
    archived_at: datetime | None,
) -> RetentionPlan:
    if policy.archived_days == 0:
        return RetentionPlan((), ())
    if archived_at is None or now < archived_at + timedelta(days=policy.archived_days):
        return RetentionPlan((), ())
    reason = (
        f"tenant archived on {_day(archived_at)}; its {policy.archived_days}-day archive "
        "retention has passed"
    )
    return RetentionPlan(tuple(Removal(r, reason) for r in reversed(links)), ())
