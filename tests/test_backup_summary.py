"""The backup summary's staleness rule: the schedule's interval from its cron expression, plus
the grace, against an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.core.backups.summary import NEVER_REASON, StalePolicy, schedule_interval
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
