"""What a backup run reports: live progress (tenants, MB/s, ETA) while it runs, and per-tenant
outcomes with totals when it is done."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from console.core.backups.catalog import BackupRecord

MB = 1_000_000
T = TypeVar("T")


class BackupProgress:
    """Counts of a run in progress, read by the CLI's progress line and the UI (any thread may
    add bytes: the pipeline counts them as it stores them). ``clock``: seconds, monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0  # plaintext bytes read from the database so far
        self.started = clock()

    def start(self, total: int) -> None:
        """A run of ``total`` tenants begins now."""
        self.total, self.done, self.failed, self.bytes = total, 0, 0, 0
        self.started = self._clock()

    def add_bytes(self, count: int) -> None:
        """``count`` more plaintext bytes went through the pipeline."""
        with self._lock:
            self.bytes += count

    def finished_one(self, ok: bool) -> None:
        """One tenant finished (``ok``: backed up)."""
        if ok:
            self.done += 1
        else:
            self.failed += 1

    @property
    def skipped(self) -> int:
        """Tenants skipped (a backup run skips none: busy ones count as failed)."""
        return 0

    @property
    def remaining(self) -> int:
        """Tenants not finished yet."""
        return self.total - self.done - self.failed

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return max(self._clock() - self.started, 0.0)

    @property
    def rate(self) -> float:
        """Tenants finished per second."""
        elapsed = self.elapsed_s
        return (self.done + self.failed) / elapsed if elapsed else 0.0

    @property
    def mb_per_s(self) -> float:
        """Plaintext megabytes (10^6) per second so far."""
        elapsed = self.elapsed_s
        return self.bytes / MB / elapsed if elapsed else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (None before the first tenant finishes)."""
        finished = self.done + self.failed
        if not finished:
            return None
        return self.elapsed_s / finished * self.remaining


async def fan_out(
    keys: Sequence[str],
    workers: int,
    progress: BackupProgress,
    work: Callable[[str], Awaitable[T]],
    ok: Callable[[T], bool],
) -> list[T]:
    """``work`` on every key, ``workers`` at a time, counting each into ``progress`` as it
    ends (``ok`` tells success); outcomes in the order of ``keys``."""
    progress.start(len(keys))
    gate = asyncio.Semaphore(workers)

    async def one(key: str) -> T:
        async with gate:
            outcome = await work(key)
        progress.finished_one(ok(outcome))
        return outcome

    return list(await asyncio.gather(*(one(key) for key in keys)))


@dataclass(frozen=True)
class BackupOutcome:
    """One tenant of a run: its backup, or why there is none."""

    key: str
    record: BackupRecord | None
    error: str | None = None
    why_full: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the tenant was backed up."""
        return self.record is not None and self.error is None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.key,
            "result": "succeeded" if self.ok else "failed",
            "error": self.error,
            "full_because": self.why_full,
            "backup": self.record.as_json() if self.record else None,
        }


@dataclass
class BackupRunReport:
    """Every tenant's outcome, in the order asked, and totals."""

    outcomes: list[BackupOutcome] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def succeeded(self) -> list[BackupOutcome]:
        """Tenants backed up."""
        return [o for o in self.outcomes if o.ok]

    @property
    def failures(self) -> list[BackupOutcome]:
        """Tenants not backed up, with the reason."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def bytes(self) -> int:
        """Bytes stored by the run."""
        return sum(o.record.bytes or 0 for o in self.succeeded if o.record)

    @property
    def raw_bytes(self) -> int:
        """Plaintext bytes the run stored (before compression and encryption)."""
        return sum(o.record.raw_bytes or 0 for o in self.succeeded if o.record)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "total": len(self.outcomes),
            "succeeded": len(self.succeeded),
            "failed": len(self.failures),
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            "tenants": [o.as_json() for o in self.outcomes],
        }
