"""The backup summaries: the staleness rule (the schedule's interval from its cron expression,
plus the grace, against an injected clock), and each tenant's figures read from real backups
in a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console.core.backups.catalog import BackupKind
from console.core.backups.summary import (
    NEVER_REASON,
    BackupState,
    StalePolicy,
    TenantBackups,
    read_summaries,
    schedule_interval,
)
from console.core.service import ConsoleService
from console.core.tenants.registry import TenantStatus

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("cron", "hours"),
    [
        ("0 2 * * *", 24),  # daily
        ("0 */4 * * *", 4),
        ("30 3 * * 0", 7 * 24),  # weekly
        ("0 2 * * 1-5", 3 * 24),  # weekdays: the weekend is the longest gap
        ("0 2 1 * *", 31 * 24),  # monthly: the longest month
    ],
)
def test_interval_is_the_longest_gap_of_the_schedule(cron: str, hours: int) -> None:
    assert schedule_interval(cron, NOW) == timedelta(hours=hours)


def test_stale_after_interval_plus_grace() -> None:
    policy = StalePolicy.of("0 2 * * *", 2.0, NOW)
    assert policy.limit == timedelta(hours=26)
    fresh = NOW - timedelta(hours=26)
    old = NOW - timedelta(hours=26, minutes=1)
    assert policy.reason(TenantStatus.ACTIVE, fresh, NOW) is None
    reason = policy.reason(TenantStatus.ACTIVE, old, NOW)
    assert reason is not None
    assert reason == "newest full 26.0 h old; limit 26.0 h (0 2 * * * + 2.0 h grace)"
    # The same full is fresh again for a weekly schedule.
    assert StalePolicy.of("0 2 * * 0", 2.0, NOW).reason(TenantStatus.ACTIVE, old, NOW) is None


def test_grace_counts() -> None:
    full = NOW - timedelta(hours=30)
    assert StalePolicy.of("0 2 * * *", 2.0, NOW).reason(TenantStatus.ACTIVE, full, NOW)
    assert StalePolicy.of("0 2 * * *", 6.0, NOW).reason(TenantStatus.ACTIVE, full, NOW) is None


@pytest.mark.parametrize("status", list(TenantStatus))
def test_which_tenants_can_be_stale(status: TenantStatus) -> None:
    """No full at all is STALE ("never backed up") for tenants holding data; ARCHIVED tenants
    (and ones never provisioned) are never stale."""
    policy = StalePolicy.of("0 2 * * *", 2.0, NOW)
    watched = status in {
        TenantStatus.ACTIVE,
        TenantStatus.INACTIVE,
        TenantStatus.DEACTIVATING,
        TenantStatus.OFFBOARDING,
    }
    assert policy.reason(status, None, NOW) == (NEVER_REASON if watched else None)
    long_ago = NOW - timedelta(days=400)
    assert (policy.reason(status, long_ago, NOW) is not None) == watched


# -- on real backups --------------------------------------------------------------------------


async def summaries_counting_queries(
    dsn: str, policy: StalePolicy, now: datetime
) -> tuple[dict[str, TenantBackups], int]:
    """Every tenant's summary, and how many statements reading them took."""
    conn = await asyncpg.connect(dsn)
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    try:
        rows = await read_summaries(conn, policy, now)
    finally:
        await conn.close()
    reads = [q for q in statements if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    return {row.key: row for row in rows}, len(reads)


async def test_summaries_of_real_backups_in_a_fixed_number_of_queries(
    service: ConsoleService, database_dsn: str, su: asyncpg.Connection
) -> None:
    """Newest full and incremental, the chain on the newest full, the last failure and
    whether it is the newest attempt, in as many queries for five tenants as for two."""
    for key in ("acme", "beta"):
        await service.provision(key)
    now = datetime.now(UTC)
    policy = StalePolicy.of("0 2 * * *", 2.0, now)
    before, queries = await summaries_counting_queries(database_dsn, policy, now)
    assert [r.states for r in before.values()] == [(BackupState.NEVER,)] * 2
    assert before["acme"].stale_reason == NEVER_REASON

    for kind in (BackupKind.FULL, BackupKind.INCREMENTAL, BackupKind.INCREMENTAL):
        assert not (await service.backups.run(["acme"], kind)).failures
    assert not (await service.backups.run(["beta"], BackupKind.FULL)).failures
    for key in ("gamma", "delta", "omega"):
        await service.provision(key)
    await su.execute("DROP SCHEMA tenant_gamma CASCADE")
    assert (await service.backups.run(["gamma"])).failures
    await su.execute("DROP SCHEMA tenant_beta CASCADE")  # after its full: FAILED, not NEVER
    assert (await service.backups.run(["beta"], BackupKind.INCREMENTAL)).failures
    now = datetime.now(UTC)
    rows, queries_then = await summaries_counting_queries(database_dsn, policy, now)
    assert queries_then == queries

    history = await service.backups.history("acme")
    assert rows["acme"].last_full == history[-1]
    assert rows["acme"].last_incremental == history[0]
    assert rows["acme"].chain_length == 2
    assert rows["acme"].states == (BackupState.OK,)
    assert rows["beta"].chain_length == 0 and rows["beta"].last_incremental is None
    assert rows["beta"].states == (BackupState.FAILED,)
    assert rows["beta"].last_failure is not None
    assert rows["gamma"].states == (BackupState.NEVER, BackupState.FAILED)
    assert rows["delta"].states == (BackupState.NEVER,)
    # a day and a bit later every full is STALE
    later = now + timedelta(hours=27)
    stale, _ = await summaries_counting_queries(database_dsn, policy, later)
    assert stale["acme"].states == (BackupState.STALE,)
    assert stale["acme"].stale_reason is not None
    assert stale["acme"].stale_reason.startswith("newest full 27.0 h old")
