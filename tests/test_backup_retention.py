"""The retention planner (pure): pgBackRest-style windows, chains, the last verified backup and
archived tenants; examples first, then properties over generated backup histories."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.backups.retention import RetentionPolicy, plan, point_of
from console.core.tenants.registry import TenantStatus

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(full_days=30, incremental_days=7, archived_days=0)
TENANT = uuid.uuid4()
ACTIVE = TenantStatus.ACTIVE


def record(
    kind: BackupKind,
    days_ago: float,
    parent: BackupRecord | None = None,
    status: BackupStatus = BackupStatus.SUCCEEDED,
    verified: bool = False,
) -> BackupRecord:
    """A catalog row taken ``days_ago`` before NOW."""
    at = NOW - timedelta(days=days_ago)
    return BackupRecord(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        tenant_key="acme",
        kind=kind,
        parent_id=parent.id if parent else None,
        reason="scheduled",
        status=status,
        started_at=at,
        finished_at=at + timedelta(seconds=5),
        bytes=100,
        raw_bytes=300,
        sha256="0" * 64,
        location=None,
        encrypted=True,
        compressed=True,
        covers_until=at,
        snapshot=None,
        lsn=None,
        server_version="18.0",
        tree_revision="0005",
        duration_ms=5000.0,
        recipients=(),
        verified_at=at if verified else None,
        verify_result="ok" if verified else None,
        verify_level="checksum" if verified else None,
        error=None,
        expired_at=None,
    )


def full(days_ago: float, **kw: object) -> BackupRecord:
    return record(BackupKind.FULL, days_ago, **kw)  # type: ignore[arg-type]


def incr(parent: BackupRecord, days_ago: float, **kw: object) -> BackupRecord:
    return record(BackupKind.INCREMENTAL, days_ago, parent, **kw)  # type: ignore[arg-type]


def removed(records: list[BackupRecord], status: TenantStatus = ACTIVE, **kw: object) -> set:
    return {r.record.id for r in plan(records, POLICY, NOW, status, **kw).removals}  # type: ignore[arg-type]


def test_fulls_in_the_window_are_kept_and_the_newest_older_one_anchors_its_start() -> None:
    old, anchor = full(45), full(35)
    recent = [full(d) for d in (28, 14, 1)]
    result = plan([old, anchor, *recent], POLICY, NOW, ACTIVE)
    assert [r.record.id for r in result.removals] == [old.id]
    assert "older than the 30-day full retention" in result.removals[0].reason
    assert str(anchor.id)[:8] in result.removals[0].reason


def test_nothing_older_than_the_window_means_nothing_removed() -> None:
    assert removed([full(20), full(10), full(0.5)]) == set()


def test_incrementals_go_with_their_full_newest_first() -> None:
    old = full(40)
    i1 = incr(old, 39)
    i2 = incr(i1, 38)
    newer = full(33)
    result = plan([old, i1, i2, newer, full(2)], POLICY, NOW, ACTIVE)
    assert [r.record.id for r in result.removals] == [i2.id, i1.id, old.id]
    assert all(f"its full {str(old.id)[:8]}" in r.reason for r in result.removals[:2])


def test_old_incrementals_of_a_kept_full_are_removed_when_every_later_link_is_old() -> None:
    anchor = full(20)
    links = [anchor]
    for days in (19, 18, 17):
        links.append(incr(links[-1], days))
    recent = full(9)
    recent_incr = incr(recent, 8.5)
    window_start = full(7.5)  # the point at NOW - 7 days restores from this full
    result = plan([*links, recent, recent_incr, window_start, full(1)], POLICY, NOW, ACTIVE)
    assert [r.record.id for r in result.removals] == [
        recent_incr.id,
        links[3].id,
        links[2].id,
        links[1].id,
    ]
    assert "7-day incremental retention" in result.removals[0].reason


def test_an_old_incremental_under_a_recent_link_stays() -> None:
    base = full(10)
    old_link = incr(base, 9)  # older than 7 days, but a later link of its chain is kept
    recent_link = incr(old_link, 2)
    assert removed([base, old_link, recent_link]) == set()


def test_the_newest_link_before_the_incremental_window_is_kept() -> None:
    base = full(12)
    first = incr(base, 10)
    anchor = incr(first, 8)  # the state at NOW - 7 days restores from this link
    later_full = full(5)
    assert removed([base, first, anchor, later_full]) == set()


def test_the_last_verified_backup_is_kept_with_its_chain() -> None:
    verified_full = full(50, verified=True)
    verified_incr = incr(verified_full, 49, verified=True)
    later_incr = incr(verified_incr, 48)
    anchor = full(35)
    result = plan([verified_full, verified_incr, later_incr, anchor, full(1)], POLICY, NOW, ACTIVE)
    assert [r.record.id for r in result.removals] == [later_incr.id]
    assert result.notes and str(verified_incr.id)[:8] in result.notes[0]


def test_a_kept_verified_backup_protects_nothing_else() -> None:
    old_verified = full(50, verified=True)
    assert removed([old_verified, full(35), full(2, verified=True)]) == {old_verified.id}


def test_failed_running_and_expired_rows_are_never_removed() -> None:
    rows = [
        full(60, status=BackupStatus.FAILED),
        full(59, status=BackupStatus.EXPIRED),
        full(58, status=BackupStatus.RUNNING),
        full(40),
        full(35),
    ]
    assert removed(rows) == {rows[3].id}


def test_an_incremental_with_a_broken_chain_follows_the_incremental_window() -> None:
    gone = full(15, status=BackupStatus.EXPIRED)
    orphan_old, orphan_new = incr(gone, 14), incr(gone, 3)
    result = plan([gone, orphan_old, full(10), orphan_new, full(1)], POLICY, NOW, ACTIVE)
    assert [r.record.id for r in result.removals] == [orphan_old.id]
    assert "chain is broken" in result.removals[0].reason


def test_archived_tenants_keep_everything_by_default() -> None:
    rows = [full(400), full(300)]
    assert removed(rows, TenantStatus.ARCHIVED, archived_at=NOW - timedelta(days=290)) == set()


def test_archived_tenants_lose_every_backup_after_their_archive_retention() -> None:
    rows = [full(400, verified=True), full(300)]
    rows.append(incr(rows[1], 299))
    policy = dataclasses.replace(POLICY, archived_days=90)
    archived = NOW - timedelta(days=91)
    result = plan(rows, policy, NOW, TenantStatus.ARCHIVED, archived)
    assert [r.record.id for r in result.removals] == [rows[2].id, rows[1].id, rows[0].id]
    assert "archive retention has passed" in result.removals[0].reason
    inside = plan(rows, policy, NOW, TenantStatus.ARCHIVED, NOW - timedelta(days=89))
    assert inside.removals == ()


# -- properties over generated histories ------------------------------------------------------

step = st.tuples(
    st.sampled_from(["full", "incr", "incr", "incr", "failed"]),
    st.floats(min_value=0.05, max_value=4.0),
    st.booleans(),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[BackupRecord], RetentionPolicy]:
    """A tenant's backups as the writer makes them: a full, incrementals extending the newest
    chain, a full again after a failed link; some verified, oldest up to ~120 days ago."""
    steps = draw(st.lists(step, min_size=1, max_size=40))
    days_ago = draw(st.floats(min_value=0.0, max_value=120.0)) + sum(s[1] for s in steps)
    policy = RetentionPolicy(
        draw(st.integers(min_value=1, max_value=40)), draw(st.integers(0, 14)), 0
    )
    records: list[BackupRecord] = []
    head: BackupRecord | None = None  # the newest succeeded link, when the chain may be extended
    for what, gap, verified in steps:
        days_ago -= gap
        if what == "failed":
            records.append(full(days_ago, status=BackupStatus.FAILED))
            head = None
            continue
        if what == "full" or head is None:
            made = full(days_ago, verified=verified)
        else:
            made = incr(head, days_ago, verified=verified)
        records.append(made)
        head = made
    return records, policy


def _kept(records: list[BackupRecord], policy: RetentionPolicy) -> dict[uuid.UUID, BackupRecord]:
    gone = {r.record.id for r in plan(records, policy, NOW, ACTIVE).removals}
    return {r.id: r for r in records if r.id not in gone}


@settings(max_examples=300, deadline=None)
@given(histories())
def test_removal_never_breaks_a_kept_chain(history: tuple) -> None:
    records, policy = history
    kept = _kept(records, policy)
    by_id = {r.id: r for r in records}
    for link in kept.values():
        if link.parent_id is not None and by_id[link.parent_id].status is BackupStatus.SUCCEEDED:
            assert link.parent_id in kept


@settings(max_examples=300, deadline=None)
@given(histories())
def test_every_point_in_the_windows_stays_restorable(history: tuple) -> None:
    records, policy = history
    kept = _kept(records, policy)
    links = sorted((r for r in records if r.status is BackupStatus.SUCCEEDED), key=point_of)
    fulls = [r for r in links if r.kind is BackupKind.FULL]
    for days in range(policy.full_days + 1):
        at = NOW - timedelta(days=days)
        covering = [r for r in fulls if point_of(r) <= at]
        if covering:
            assert covering[-1].id in kept, f"no full restores {days} days ago"
    for hours in range(min(policy.incremental_days, policy.full_days) * 24 + 1):
        at = NOW - timedelta(hours=hours)
        covering = [r for r in links if point_of(r) <= at]
        if covering:
            assert covering[-1].id in kept, f"no link restores {hours} hours ago"


@settings(max_examples=300, deadline=None)
@given(histories())
def test_only_old_succeeded_backups_go_and_a_verified_one_stays(history: tuple) -> None:
    records, policy = history
    result = plan(records, policy, NOW, ACTIVE)
    kept = _kept(records, policy)
    for removal in result.removals:
        assert removal.record.status is BackupStatus.SUCCEEDED
        limit = policy.incremental_days
        if removal.record.kind is BackupKind.FULL:
            limit = policy.full_days
        assert point_of(removal.record) < NOW - timedelta(days=min(limit, policy.full_days))
    if any(r.verified for r in records):
        assert any(r.verified for r in kept.values())
    points = [point_of(r.record) for r in result.removals]
    assert points == sorted(points, reverse=True)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_pruning_twice_removes_nothing_more(history: tuple) -> None:
    records, policy = history
    kept = list(_kept(records, policy).values())
    assert plan(kept, policy, NOW, ACTIVE).removals == ()
