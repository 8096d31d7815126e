"""The last minutes of pool totals, kept in memory only (a ring buffer) for the sparklines."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from console.core.pools.monitor import PoolSnapshot


@dataclass(frozen=True)
class Sample:
    """Totals across every pool at one snapshot; rates are None until two snapshots exist."""

    taken_at: datetime
    waiting: int
    xact_per_s: float | None
    avg_wait_ms: float | None


def totals(snapshot: PoolSnapshot) -> Sample:
    """Waiting clients, transactions/s and the transaction-weighted average wait of all pools."""
    rated = [p.rates for p in snapshot.pools if p.rates is not None]
    if not rated:
        return Sample(snapshot.taken_at, snapshot.waiting, None, None)
    xacts = sum(r.xact_per_s for r in rated)
    waited = sum(r.avg_wait_ms * r.xact_per_s for r in rated)
    return Sample(snapshot.taken_at, snapshot.waiting, xacts, waited / xacts if xacts else 0.0)


def capacity(history_minutes: int, poll_interval: float) -> int:
    """Samples that cover ``history_minutes`` at one poll per ``poll_interval`` seconds."""
    return max(2, round(history_minutes * 60 / poll_interval))


class PoolHistory:
    """A bounded deque of :class:`Sample`; samples older than the window are dropped too
    (polls are sparser while PgBouncer is down)."""

    def __init__(self, history_minutes: int, poll_interval: float) -> None:
        self.minutes = history_minutes
        self.samples: deque[Sample] = deque(maxlen=capacity(history_minutes, poll_interval))

    def add(self, snapshot: PoolSnapshot) -> Sample:
        """Record the totals of ``snapshot``; returns them."""
        sample = totals(snapshot)
        self.samples.append(sample)
        while (sample.taken_at - self.samples[0].taken_at).total_seconds() > self.minutes * 60:
            self.samples.popleft()
        return sample

    def series(self, field: str) -> tuple[list[float], list[float]]:
        """(minutes before the newest sample (<= 0), values) of ``field``, skipping gaps."""
        if not self.samples:
            return [], []
        newest = self.samples[-1].taken_at
        xs: list[float] = []
        ys: list[float] = []
        for sample in self.samples:
            value = getattr(sample, field)
            if value is not None:
                xs.append((sample.taken_at - newest).total_seconds() / 60)
                ys.append(float(value))
        return xs, ys

    def __len__(self) -> int:
        return len(self.samples)
