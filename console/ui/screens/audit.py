"""The audit log, newest first, filterable by tenant, action and actor, following new entries."""

from __future__ import annotations

import json
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from console.core.audit import AuditEntry
from console.ui.polling import PollingScreen
from console.ui.screens.base import RowTable

AUDIT_LIMIT = 500
SCROLLBAR = 2
# key, label, narrowest width it is cut to
AUDIT_COLUMNS = (
    ("when", "When (UTC)", 19),
    ("tenant", "Tenant", 8),
    ("action", "Action", 12),
    ("actor", "Actor", 9),
    ("from", "From", 7),
)


class AuditDetailScreen(ModalScreen[None]):
    """One entry's details JSON."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="audit_detail.close")]

    def __init__(self, entry: AuditEntry) -> None:
        super().__init__(classes="dialog")
        self._entry = entry

    def compose(self) -> ComposeResult:
        e = self._entry
        with Vertical(classes="dialog-box wide"):
            yield Label(f"{e.action_type} · {e.tenant_key or 'cluster'}", classes="dialog-title")
            yield Static(
                f"{e.action_timestamp:%Y-%m-%d %H:%M:%S} UTC by {e.actor}@{e.actor_host} "
                f"from {e.actor_address}",
                markup=False,
            )
            with VerticalScroll():  # details hold error texts: never parsed as markup
                yield Static(
                    json.dumps(e.details, indent=2, sort_keys=True), id="audit-json", markup=False
                )

    def action_close(self) -> None:
        self.dismiss(None)


class AuditScreen(PollingScreen):
    """Audit entries; new ones appear at the top as they are written."""

    POLL_NAME = "audit"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="audit.filter"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="audit.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="audit")
        self._entries: dict[str, AuditEntry] = {}
        self._filters: tuple[str | None, str | None, str | None] = (None, None, None)
        self._widths: list[int] = []
        self._more = False  # older entries exist beyond AUDIT_LIMIT

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        with Horizontal(id="audit-tools"):
            yield Input(placeholder="tenant key (prefix)", id="f-tenant")
            yield Input(placeholder="action (prefix)", id="f-action")
            yield Input(placeholder="actor", id="f-actor")
        yield RowTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="audit-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.start_polling()

    async def poll(self) -> None:
        """Fetch the newest entries under the filters; add the new ones."""
        key, action, actor = self._filters
        # One more than shown: tells whether older entries exist beyond the limit.
        entries = await self.goapp.service.audit_filtered(key, action, actor, AUDIT_LIMIT + 1)
        self._apply(entries[:AUDIT_LIMIT], more=len(entries) > AUDIT_LIMIT)

    def _apply(self, entries: list[AuditEntry], more: bool) -> None:
        table: DataTable[str] = self.query_one(DataTable)
        wanted = {str(e.id): e for e in entries}
        widths = self._fit(entries)
        with self.app.batch_update():
            if widths != self._widths:  # first load, a resize, or longer values arrived
                self._rebuild(table, entries, widths)
            else:
                for gone in set(self._entries) - set(wanted):
                    table.remove_row(gone)
                new = [e for key, e in wanted.items() if key not in self._entries]
                for e in new:
                    table.add_row(*audit_cells(e, widths), key=str(e.id))
                if new:
                    table.sort("when", key=lambda when: when.at, reverse=True)
        self._entries, self._more = wanted, more
        count = f"{len(wanted):,} entr{'y' if len(wanted) == 1 else 'ies'}"
        if more:
            count = f"newest {AUDIT_LIMIT:,} entries shown (older ones exist: narrow the filters)"
        self.query_one("#audit-status", Static).update(f"{count} · following live")

    def _fit(self, entries: list[AuditEntry]) -> list[int]:
        """Column widths: what the values need, shrunk to the table's width (80 columns
        included) when they do not fit."""
        room = (self.size.width or 80) - len(AUDIT_COLUMNS) * 2 - SCROLLBAR
        wanted = [len(label) for _, label, _ in AUDIT_COLUMNS]
        for e in entries:
            wanted = [max(w, len(c)) for w, c in zip(wanted, audit_cells(e), strict=True)]
        return fit_widths(wanted, [floor for _, _, floor in AUDIT_COLUMNS], room)

    def _rebuild(self, table: DataTable[str], entries: list[AuditEntry], widths: list[int]) -> None:
        cursor = table.cursor_row
        table.clear(columns=True)
        for (key, label, _), width in zip(AUDIT_COLUMNS, widths, strict=True):
            table.add_column(label, key=key, width=width)
        for e in entries:
            table.add_row(*audit_cells(e, widths), key=str(e.id))
        table.move_cursor(row=min(cursor, max(0, len(entries) - 1)))
        self._widths = widths

    def on_resize(self) -> None:
        if self.loaded:
            self._apply(list(self._entries.values()), self._more)

    @on(Input.Submitted)
    def _filter(self) -> None:
        values = [
            self.query_one(f"#f-{name}", Input).value.strip() or None
            for name in ("tenant", "action", "actor")
        ]
        self._filters = (values[0], values[1], values[2])
        self.query_one(DataTable).focus()
        self.poll_soon()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        entry = self._entries.get(str(event.row_key.value))
        if entry is not None:
            self.app.push_screen(AuditDetailScreen(entry))

    def action_focus_filter(self) -> None:
        self.query_one("#f-tenant", Input).focus()

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.poll_soon()

    def action_first_row(self) -> None:
        self.query_one(DataTable).move_cursor(row=0)

    def action_last_row(self) -> None:
        table: DataTable[str] = self.query_one(DataTable)
        table.move_cursor(row=table.row_count - 1)

    def shown_actions(self) -> list[str]:
        """Action types in display order (for tests)."""
        table: DataTable[str] = self.query_one(DataTable)
        return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]


def audit_cells(e: AuditEntry, widths: list[int] | None = None) -> tuple[str, ...]:
    """One entry's cells, each cut to its width with an ellipsis (the details dialog shows
    everything)."""
    cells = (
        Stamp(e.action_timestamp),
        e.tenant_key or "—",
        e.action_type,
        f"{e.actor}@{e.actor_host}",
        e.actor_address,
    )
    if widths is None:
        return cells
    return tuple(c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(cells, widths, strict=True))


class Stamp(str):
    """A When cell: shown to the second, sorted by the exact time."""

    at: datetime

    def __new__(cls, at: datetime) -> Stamp:
        stamp = super().__new__(cls, at.strftime("%Y-%m-%d %H:%M:%S"))
        stamp.at = at
        return stamp


def fit_widths(wanted: list[int], floors: list[int], room: int) -> list[int]:
    """Shrink the widest columns first (never below their floor) until they fit ``room``."""
    widths = list(wanted)
    while sum(widths) > room:
        slack = [w - f for w, f in zip(widths, floors, strict=True)]
        widest = max(range(len(widths)), key=slack.__getitem__)
        if slack[widest] <= 0:
            break
        widths[widest] -= 1
    return widths
