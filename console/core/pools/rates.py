"""Rates from successive ``SHOW STATS`` samples.

PgBouncer's counters only grow; a counter that goes backwards means PgBouncer restarted (or the
database entry was recreated), so that database's baseline is reset and no rate is reported for
that sample instead of a negative one.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.core.pools.rows import StatsRow


@dataclass(frozen=True)
class PoolRates:
    """Per-second rates and per-transaction averages of one database between two samples."""

    xact_per_s: float
    query_per_s: float
    avg_query_ms: float
    avg_xact_ms: float
    avg_wait_ms: float


class RateTracker:
    """Keeps the previous sample per database and turns the next one into rates."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, StatsRow]] = {}
        self.restarts = 0

    def update(self, at: float, stats: dict[str, StatsRow]) -> dict[str, PoolRates]:
        """Rates for every database seen in both this sample and the previous one.

        ``at`` is a monotonic timestamp in seconds. Databases that disappeared are forgotten.
        """
        rates: dict[str, PoolRates] = {}
        current: dict[str, tuple[float, StatsRow]] = {}
        for name, row in stats.items():
            current[name] = (at, row)
            previous = self._previous.get(name)
            if previous is None:
                continue
            then, old = previous
            elapsed = at - then
            if elapsed <= 0:
                current[name] = previous
                continue
            if _went_backwards(old, row):
                self.restarts += 1
                continue
            rates[name] = _rates(old, row, elapsed)
        self._previous = current
        return rates

    def reset(self) -> None:
        """Forget every baseline (e.g. after reconnecting to a restarted PgBouncer)."""
        self._previous.clear()


def _went_backwards(old: StatsRow, new: StatsRow) -> bool:
    return (
        new.xact_count < old.xact_count
        or new.query_count < old.query_count
        or new.query_time_us < old.query_time_us
        or new.wait_time_us < old.wait_time_us
        or new.xact_time_us < old.xact_time_us
    )


def _rates(old: StatsRow, new: StatsRow, elapsed: float) -> PoolRates:
    xacts = new.xact_count - old.xact_count
    queries = new.query_count - old.query_count
    # Waits happen per server assignment where PgBouncer counts them (1.21+), else per
    # transaction (in transaction pooling each transaction gets a server once).
    if new.server_assignments is not None and old.server_assignments is not None:
        assignments = new.server_assignments - old.server_assignments
    else:
        assignments = xacts
    return PoolRates(
        xacts / elapsed,
        queries / elapsed,
        _avg_ms(new.query_time_us - old.query_time_us, queries),
        _avg_ms(new.xact_time_us - old.xact_time_us, xacts),
        _avg_ms(new.wait_time_us - old.wait_time_us, assignments),
    )


def _avg_ms(total_us: int, count: int) -> float:
    return total_us / count / 1000 if count > 0 else 0.0
