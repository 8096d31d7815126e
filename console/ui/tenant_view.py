"""What the tenants table shows: filtering, sorting and paging of overview rows, UI-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from console.core.registry import TenantStatus
from console.core.service import TenantRow

PAGE_SIZE = 500
STATUS_MARKS = {
    TenantStatus.ACTIVE: "●",
    TenantStatus.INACTIVE: "○",
    TenantStatus.INITIALIZING: "◌",
    TenantStatus.DEACTIVATING: "◐",
    TenantStatus.OFFBOARDING: "◑",
    TenantStatus.ARCHIVED: "▪",
    TenantStatus.FAILED: "✗",
}
COLUMNS = (
    ("key", "Key"),
    ("name", "Name"),
    ("status", "Status"),
    ("created", "Created"),
    ("size", "Size"),
    ("tables", "Tables"),
    ("rows", "Est. rows"),
    ("backup", "Last backup"),
    ("revision", "Revision"),
)


@dataclass(frozen=True)
class SlowFacts:
    """Figures refreshed less often: schema size and migration revision."""

    bytes: int | None
    revision: str | None


def status_label(status: TenantStatus, busy: bool) -> str:
    """Symbol and word (never colour alone), plus a busy marker."""
    return f"{STATUS_MARKS[status]} {status.value}" + (" ⟳ busy" if busy else "")


def human_size(n: int | None) -> str:
    """``1.2 MB``; an em dash when unknown."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "—"


def age(then: datetime | None, now: datetime) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; an em dash when never."""
    if then is None:
        return "—"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds // span}{unit}"
    return f"{seconds}s"


def cells(row: TenantRow, slow: SlowFacts | None, busy: bool, now: datetime) -> tuple[str, ...]:
    """The table cells of one tenant, in COLUMNS order."""
    t = row.tenant
    stats = row.stats
    return (
        t.key,
        t.display_name,
        status_label(t.status, busy),
        t.created_at.strftime("%Y-%m-%d"),
        human_size(slow.bytes if slow else None),
        str(stats.tables) if stats else "—",
        f"{stats.estimated_rows:,}" if stats else "—",
        age(row.last_backup, now),
        (slow.revision if slow else None) or "—",
    )


def _sort_key(column: str, row: TenantRow, slow: SlowFacts | None) -> tuple[int, object]:
    t = row.tenant
    value: object
    match column:
        case "key":
            value = t.key
        case "name":
            value = t.display_name.lower()
        case "status":
            value = t.status.value
        case "created":
            value = t.created_at
        case "size":
            value = slow.bytes if slow else None
        case "tables":
            value = row.stats.tables if row.stats else None
        case "rows":
            value = row.stats.estimated_rows if row.stats else None
        case "backup":
            value = row.last_backup
        case _:
            value = slow.revision if slow else None
    return (value is None, value if value is not None else 0)


def select_rows(
    rows: list[TenantRow],
    text: str,
    status: TenantStatus | None,
    sort_column: str,
    descending: bool,
    slow: dict[str, SlowFacts],
) -> list[TenantRow]:
    """Rows whose key or name contains ``text`` (case-insensitive), of ``status``, sorted."""
    needle = text.strip().lower()
    chosen = [
        r
        for r in rows
        if (status is None or r.tenant.status is status)
        and (not needle or needle in r.tenant.key or needle in r.tenant.display_name.lower())
    ]
    chosen.sort(key=lambda r: r.tenant.key)
    if sort_column != "key" or descending:
        chosen.sort(
            key=lambda r: _sort_key(sort_column, r, slow.get(r.tenant.schema_name)),
            reverse=descending,
        )
    return chosen
