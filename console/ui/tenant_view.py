"""What the tenants table shows: filtering, sorting and paging of overview rows, UI-free."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from console.core.display import human_size
from console.core.tenants.overview import TenantRow
from console.core.tenants.registry import TenantStatus

PAGE_SIZE = 100
STATUS_MARKS = {
    TenantStatus.ACTIVE: "●",
    TenantStatus.INACTIVE: "○",
    TenantStatus.INITIALIZING: "◌",
    TenantStatus.DEACTIVATING: "◐",
    TenantStatus.OFFBOARDING: "◑",
    TenantStatus.ARCHIVED: "▪",
    TenantStatus.FAILED: "✗",
    TenantStatus.RESTORING: "↺",
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


class SlowFacts(NamedTuple):
    """Figures refreshed less often: schema size and migration revision (a tuple: one per
    tenant is built on every sizes refresh)."""

    bytes: int | None
    revision: str | None
    tables: int | None = None
    estimated_rows: int | None = None


def status_label(status: TenantStatus, busy: bool) -> str:
    """Symbol and word (never colour alone), plus a busy marker."""
    return f"{STATUS_MARKS[status]} {status.value}" + (" ⟳ busy" if busy else "")


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
    tables, estimated = _counts(row, slow)
    return (
        t.key,
        t.display_name,
        status_label(t.status, busy),
        t.created_at.strftime("%Y-%m-%d"),
        human_size(slow.bytes if slow else None),
        "—" if tables is None else str(tables),
        "—" if estimated is None else f"{estimated:,}",
        age(row.last_backup, now),
        (slow.revision if slow else None) or "—",
    )


def _counts(row: TenantRow, slow: SlowFacts | None) -> tuple[int | None, int | None]:
    """Table count and row estimate: the slow pass's when newer, else the overview's."""
    if slow is not None and slow.tables is not None:
        return slow.tables, slow.estimated_rows
    if row.stats is not None:
        return row.stats.tables, row.stats.estimated_rows
    return None, None


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
            value = _counts(row, slow)[0]
        case "rows":
            value = _counts(row, slow)[1]
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
    return RowIndex(rows, slow).select(text, status, sort_column, descending)


class RowIndex:
    """The rows of one refresh, prepared for filtering as you type.

    Each row's lower-cased ``key`` and name are joined once, each sort order is computed once,
    and a keystroke that extends the previous filter text narrows the previous result instead
    of scanning every row again.
    """

    def __init__(self, rows: list[TenantRow], slow: dict[str, SlowFacts]) -> None:
        self.rows = rows
        self._slow = slow
        # The newline cannot be typed into the one-line filter: no match spans key and name.
        self._haystacks = [f"{r.tenant.key}\n{r.tenant.display_name.lower()}" for r in rows]
        self._orders: dict[tuple[str, bool], list[int]] = {}
        self._last: tuple[tuple[str, bool, TenantStatus | None], str, list[int]] | None = None

    def _order(self, sort_column: str, descending: bool) -> list[int]:
        found = self._orders.get((sort_column, descending))
        if found is None:
            rows, slow = self.rows, self._slow
            found = sorted(range(len(rows)), key=lambda i: rows[i].tenant.key)
            if sort_column != "key" or descending:
                found.sort(
                    key=lambda i: _sort_key(
                        sort_column, rows[i], slow.get(rows[i].tenant.schema_name)
                    ),
                    reverse=descending,
                )
            self._orders[(sort_column, descending)] = found
        return found

    def select(
        self, text: str, status: TenantStatus | None, sort_column: str, descending: bool
    ) -> list[TenantRow]:
        """Rows whose key or name contains ``text`` (case-insensitive), of ``status``, sorted."""
        needle = text.strip().lower()
        scope = (sort_column, descending, status)
        rows, haystacks = self.rows, self._haystacks
        if self._last is not None and self._last[0] == scope and self._last[1] in needle:
            chosen = self._last[2]  # the new text contains the old: only those rows can match
        else:
            chosen = self._order(sort_column, descending)
            if status is not None:
                chosen = [i for i in chosen if rows[i].tenant.status is status]
        if needle:
            chosen = [i for i in chosen if needle in haystacks[i]]
        self._last = (scope, needle, chosen)
        return [rows[i] for i in chosen]
