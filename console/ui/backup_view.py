"""What the Backups screen and a tenant's backup history show, UI-free: cells in words (never
colour alone) and the size-over-time series of the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.backups.report import MB, BackupProgress, BackupRunReport
from console.core.backups.summary import TenantBackups
from console.core.backups.verify import RESTORE, VerifyReport
from console.core.display import human_size
from console.ui.tenant_view import age, status_label

# column key, label: the state right after the key, so it shows at 80 columns
COLUMNS = (
    ("key", "Tenant"),
    ("state", "State"),
    ("full", "Full"),
    ("full_size", "Size"),
    ("ratio", "Ratio"),
    ("verified", "Checked"),
    ("incremental", "Incr."),
    ("incremental_size", "Size"),
    ("chain", "Chain"),
    ("status", "Tenant status"),
)
HISTORY_COLUMNS = (
    ("started", "Started (UTC)"),
    ("kind", "Kind"),
    ("status", "Status"),
    ("size", "Size"),
    ("ratio", "Ratio"),
    ("took", "Took"),
    ("verified", "Checked"),
    ("note", "Id / error"),
)
STATUS_MARKS = {
    BackupStatus.RUNNING: "… running",
    BackupStatus.SUCCEEDED: "✓ ok",
    BackupStatus.FAILED: "✗ FAILED",
    BackupStatus.EXPIRED: "▪ expired",
}


def ratio(record: BackupRecord | None) -> str:
    """``3.4×`` (bytes before compression over bytes stored); a dash when unknown."""
    value = record.compression_ratio if record else None
    return "—" if value is None else f"{value:.1f}×"


def verified(record: BackupRecord | None) -> str:
    """How far the backup was checked: ``✓ restore`` (restored and compared: the only state
    called verified), ``checksum`` (read back, never restored), ``✗ FAILED`` or ``no``."""
    if record is None:
        return "—"
    if record.verified_at is None:
        return "no"
    if not record.verified:
        return "✗ FAILED"
    return "✓ restore" if record.verify_level == RESTORE else "checksum"


def cells(row: TenantBackups, now: datetime) -> tuple[str, ...]:
    """One tenant's cells, in COLUMNS order."""
    full, incremental = row.last_full, row.last_incremental
    return (
        row.key,
        row.state_text,
        age(full.finished_at if full else None, now),
        human_size(full.bytes if full else None),
        ratio(full),
        verified(full),
        age(incremental.finished_at if incremental else None, now),
        human_size(incremental.bytes if incremental else None),
        str(row.chain_length) if full else "—",
        status_label(row.status, False),
    )


def history_cells(record: BackupRecord) -> tuple[str, ...]:
    """One backup's cells, in HISTORY_COLUMNS order."""
    took = "—" if record.duration_ms is None else f"{record.duration_ms / 1000:.1f} s"
    note = record.error if record.status is BackupStatus.FAILED and record.error else None
    return (
        record.started_at.strftime("%Y-%m-%d %H:%M"),
        record.kind.value,
        STATUS_MARKS[record.status],
        human_size(record.bytes),
        ratio(record),
        took,
        verified(record),
        note or str(record.id)[:8],
    )


@dataclass(frozen=True)
class SizeChart:
    """Stored size over time per kind: x in ``time_unit`` before now, y in ``size_unit``."""

    time_unit: str
    size_unit: str
    series: dict[BackupKind, tuple[list[float], list[float]]]
    span: float  # the oldest point's x, as a positive number (at least 1)
    top: float  # the largest y (at least 1)


def size_chart(records: Sequence[BackupRecord], now: datetime) -> SizeChart:
    """The finished backups' stored sizes against time before ``now``, oldest first; hours
    or days, kB, MB or GB, whichever reads best."""
    points = sorted(
        (r.finished_at, r.bytes, r.kind)
        for r in records
        if r.finished_at is not None and r.bytes is not None
    )
    oldest = max(((now - at).total_seconds() for at, _, _ in points), default=0.0)
    time_unit, seconds = ("days", 86400) if oldest >= 2 * 86400 else ("hours", 3600)
    largest = max((size for _, size, _ in points), default=0)
    size_unit, scale = next(
        (unit, 1024**power)
        for unit, power in (("GB", 3), ("MB", 2), ("kB", 1))
        if largest >= 1024**power or unit == "kB"
    )
    series: dict[BackupKind, tuple[list[float], list[float]]] = {}
    for kind in BackupKind:
        chosen = [(at, size) for at, size, k in points if k is kind]
        series[kind] = (
            [-(now - at).total_seconds() / seconds for at, _ in chosen],
            [size / scale for _, size in chosen],
        )
    return SizeChart(
        time_unit, size_unit, series, max(oldest / seconds, 1.0), max(largest / scale, 1.0)
    )


def summary_line(rows: Sequence[TenantBackups]) -> str:
    """``24 tenants · 2 STALE · 1 never backed up · 1 FAILED``."""
    parts = [f"{len(rows)} tenant{'s' if len(rows) != 1 else ''}"]
    never = sum(1 for r in rows if r.stale and r.last_full is None)
    stale = sum(1 for r in rows if r.stale and r.last_full is not None)
    failing = sum(1 for r in rows if r.failing)
    if stale:
        parts.append(f"{stale} STALE")
    if never:
        parts.append(f"{never} never backed up")
    if failing:
        parts.append(f"{failing} FAILED")
    if len(parts) == 1:
        parts.append("all OK")
    return " · ".join(parts)


def last_backup(record: BackupRecord | None, now: datetime) -> str:
    """``full 3h ago, 1.2 MB, checked ✓ restore`` (the tenant detail's line); ``never``."""
    if record is None:
        return "never"
    when = record.finished_at or record.started_at
    parts = [f"{record.kind.value} {age(when, now)} ago", human_size(record.bytes)]
    if record.status is not BackupStatus.SUCCEEDED:
        parts.append(STATUS_MARKS[record.status])
    parts.append(f"checked {verified(record)}")
    return ", ".join(parts)


def progress_line(progress: BackupProgress) -> str:
    """``2/5 tenants, 1 failed · 12.3 MB read · 4.5 MB/s · ETA 12s``."""
    failed = f", {progress.failed} failed" if progress.failed else ""
    eta = "—" if progress.eta_s is None else f"{progress.eta_s:.0f}s"
    return (
        f"{progress.done + progress.failed}/{progress.total} tenants{failed} · "
        f"{progress.bytes / MB:.1f} MB read · {progress.mb_per_s:.1f} MB/s · ETA {eta}"
    )


def run_outcome(report: BackupRunReport) -> tuple[bool, str]:
    """(any failure, one line) of a backup run: counts, bytes, the first failure's reason."""
    failures = report.failures
    line = (
        f"{len(report.succeeded)} backed up ({human_size(report.bytes)} stored), "
        f"{len(failures)} failed in {report.elapsed_s:.1f} s"
    )
    if failures:
        line += f" — {failures[0].key}: {failures[0].error}"
    return bool(failures), line


def verify_outcome(report: VerifyReport) -> tuple[bool, str]:
    """(any failure, one line) of a verification: counts, level, the first failure (a
    checksum-level pass is never called verified: nothing was restored)."""
    failures = report.failures
    level = "restore test" if report.restore_test else "checksum check"
    line = (
        f"{len(report.tenants) - len(failures)} passed the {level}, {len(failures)} failed "
        f"in {report.elapsed_s:.1f} s"
    )
    if failures:
        line += f" — {failures[0].key}: {failures[0].failure}"
    return bool(failures), line
