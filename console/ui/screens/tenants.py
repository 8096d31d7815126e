"""Tenants: every registry row, filtered as you type, sorted by any column, in pages."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Input, Static

from console.core.tenants.overview import TenantRow
from console.core.tenants.registry import TenantStatus
from console.ui.connection import Link, LinkChange, clock_text
from console.ui.polling import PollingScreen
from console.ui.screens.base import RowTable
from console.ui.tenant_view import COLUMNS, PAGE_SIZE, RowIndex, SlowFacts, cells

SIZE_EVERY = 10  # sizes and revisions: every 10th refresh (one catalog pass ~0.3 s per 2k)
STATUS_CYCLE: tuple[TenantStatus | None, ...] = (None, *TenantStatus)


class TenantsScreen(PollingScreen):
    """The registry as a table; Enter opens a tenant."""

    POLL_NAME = "tenants"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="tenants.filter"),
        Binding("s", "cycle_status", "Status", id="tenants.status"),
        Binding("o", "cycle_sort", "Sort", id="tenants.sort"),
        Binding("O", "reverse_sort", "Reverse", show=False, id="tenants.reverse"),
        Binding("right_square_bracket", "page(1)", "Next page", id="tenants.next_page"),
        Binding("left_square_bracket", "page(-1)", "Prev page", id="tenants.prev_page"),
        Binding("g", "jump", "Jump to key", id="tenants.jump"),
        Binding("n", "app.provision", "New tenant", id="tenants.provision"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="tenants.refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="tenants.clear"),
    ]

    def __init__(self) -> None:
        super().__init__(id="tenants")
        self._rows: list[TenantRow] = []
        self._index = RowIndex([], {})
        self._slow: dict[str, SlowFacts] = {}
        self._growth: dict[str, int | None] = {}  # key -> bytes over the last week
        self._busy: dict[str, str] = {}
        self._view: list[TenantRow] = []
        self._page = 0
        self._status: TenantStatus | None = None
        self._sort = "key"
        self._descending = False
        self._ticks = 0
        self._signature: tuple[int, object] | None = None
        self._counts = ""  # the status line's paging/filter part
        self._updated: datetime | None = None  # when the shown data was last read
        self._error: str | None = None  # why the last refresh failed (None: it did not)

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield Input(placeholder="filter by key or name…  (/ to focus, Esc clears)", id="filter")
        table: RowTable[Text] = RowTable(id="tenant-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="tenant-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.start_polling()

    def link_changed(self, change: LinkChange) -> None:
        if change.link is Link.DATABASE:
            self._show_freshness()

    # -- data --------------------------------------------------------------------------------

    async def poll(self) -> None:
        """One refresh: the registry when it changed, busy marks, and every SIZE_EVERY-th time
        the sizes and revisions (the week's growth, from the statistics history, first and
        then with them)."""
        service = self.goapp.service
        first = not self.loaded
        # Sizes cost ~0.3 s per 2,000 schemas: the first paint goes without them and the
        # refresh right after it brings them.
        with_sizes = not first and self._ticks % SIZE_EVERY == 0
        signature = await service.registry_signature()
        busy = await service.busy_tenants()
        reload = first or signature != self._signature
        if with_sizes:
            stats, revisions = await service.schema_facts()
            self._slow = {
                schema: SlowFacts(st.bytes, revisions.get(schema), st.tables, st.estimated_rows)
                for schema, st in stats.items()
            }
        if first or with_sizes:
            history = await service.stats.growth(self.goapp.clock())
            self._growth = {key: row.growth_bytes for key, row in history.items()}
        if reload:
            self._rows = await service.overview()
            self._signature = signature
        if reload or with_sizes:
            self._index = RowIndex(self._rows, self._slow, self._growth)
        if not first:
            self._ticks += 1
        if reload or with_sizes or busy != self._busy:
            self._busy = busy
            self._apply(rebuild=first)
        self._updated, self._error = self.goapp.clock(), None
        self._show_freshness()
        if first:
            self.poll_soon()  # with the sizes

    def poll_failed(self, exc: Exception) -> None:
        self._error = " ".join((str(exc) or type(exc).__name__).split())
        self._show_freshness()
        super().poll_failed(exc)

    def _apply(self, rebuild: bool = False) -> None:
        text = self.query_one("#filter", Input).value
        self._view = self._index.select(text, self._status, self._sort, self._descending)
        pages = max(1, -(-len(self._view) // PAGE_SIZE))
        self._page = min(self._page, pages - 1)
        start = self._page * PAGE_SIZE
        page = self._view[start : start + PAGE_SIZE]
        now = self.goapp.clock()
        busy = self._busy
        # Text: a name is shown as typed, never parsed as markup.
        fresh = {
            r.tenant.key: tuple(
                Text(cell, end="")
                for cell in cells(
                    r,
                    self._slow.get(r.tenant.schema_name),
                    self._growth.get(r.tenant.key),
                    r.tenant.key in busy,
                    now,
                )
            )
            for r in page
        }
        self._table().show(fresh, rebuild=rebuild)
        self._show_status(start, len(page), pages)

    def _show_status(self, start: int, count: int, pages: int) -> None:
        status = self._status.value if self._status else "all"
        arrow = "↓" if self._descending else "↑"
        shown = f"{start + 1:,}–{start + count:,}" if count else "0"
        self._counts = (
            f"{shown} of {len(self._view):,} (registry {len(self._rows):,}) · page "
            f"{self._page + 1}/{pages} · status {status} · sort {self._sort} {arrow}"
        )
        self._show_freshness()

    def stale_reason(self) -> str | None:
        """Why the table may be out of date (a failed refresh, the database lost), or None."""
        lost = self.goapp.connection.lost_since(Link.DATABASE)
        if lost is not None:
            return f"database unreachable since {clock_text(lost)}, retrying"
        if self._error is not None:
            return f"refresh failed: {self._error}; retrying"
        return None

    def _show_freshness(self) -> None:
        """The status line, led by a stale mark while the data cannot be refreshed."""
        reason = self.stale_reason()
        line = self.query_one("#tenant-status", Static)
        line.set_class(reason is not None, "stale")
        self.query_one(DataTable).set_class(reason is not None, "stale")
        if reason is None:
            line.update(self._counts)
            return
        since = f"data from {clock_text(self._updated)}" if self._updated else "no data yet"
        line.update(f"✗ stale — {since} ({reason}) · {self._counts}")

    def _table(self) -> RowTable[Text]:
        return self.query_one("#tenant-table", RowTable)

    def cursor_key(self) -> str | None:
        """Key of the tenant under the cursor."""
        return self._table().cursor_key()

    def focused_tenant(self) -> str | None:
        return self.cursor_key()

    # -- events and actions -------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._page = 0
        self._apply()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.goapp.open_tenant(event.row_key.value)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        self._descending = not self._descending if column == self._sort else False
        self._sort = column
        self._apply()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(DataTable).focus()

    def action_cycle_status(self) -> None:
        """All, then each status some tenant has (empty ones are skipped), then all again."""
        present = {row.tenant.status for row in self._rows}
        cycle = [s for s in STATUS_CYCLE if s is None or s in present or s is self._status]
        self._status = cycle[(cycle.index(self._status) + 1) % len(cycle)]
        self._page = 0
        self._apply()

    def action_cycle_sort(self) -> None:
        names = [key for key, _ in COLUMNS]
        self._sort = names[(names.index(self._sort) + 1) % len(names)]
        self._descending = False
        self._apply()

    def action_reverse_sort(self) -> None:
        self._descending = not self._descending
        self._apply()

    def action_page(self, step: int) -> None:
        pages = max(1, -(-len(self._view) // PAGE_SIZE))
        self._page = max(0, min(pages - 1, self._page + step))
        self._apply()

    def action_first_row(self) -> None:
        """Home: the first row of the first page."""
        self._show_row(0)

    def action_last_row(self) -> None:
        """End: the last row of the whole list (its last page)."""
        self._show_row(len(self._view) - 1)

    def _show_row(self, index: int) -> None:
        if index < 0:
            return
        if index // PAGE_SIZE != self._page:
            self._page = index // PAGE_SIZE
            self._apply()
        self.query_one(DataTable).move_cursor(row=index % PAGE_SIZE)

    def action_refresh_now(self) -> None:
        if self.cannot_refresh(self._updated):
            return
        self._ticks = 0  # include sizes
        self.poll_soon()

    def action_jump(self) -> None:
        from console.ui.screens.prompt import PromptScreen

        self.app.push_screen(PromptScreen("Jump to tenant key", "key"), self.jump_to)

    def jump_to(self, key: str | None) -> None:
        """Move the cursor to ``key`` (changing page, clearing filters if needed)."""
        if not key:
            return
        keys = [r.tenant.key for r in self._view]
        if key not in keys:
            self._status = None
            self.query_one("#filter", Input).value = ""
            self._view = self._index.select("", None, self._sort, self._descending)
            keys = [r.tenant.key for r in self._view]
        if key not in keys:
            self.notify(f"no tenant with key {key!r}", severity="warning", markup=False)
            return
        index = keys.index(key)
        self._page = index // PAGE_SIZE
        self._apply(rebuild=True)
        table: DataTable[Text] = self.query_one(DataTable)
        table.move_cursor(row=index % PAGE_SIZE)
        table.focus()

    def status_of(self, key: str) -> TenantStatus | None:
        """A tenant's status as last loaded."""
        for row in self._rows:
            if row.tenant.key == key:
                return row.tenant.status
        return None

    def shown_keys(self) -> list[str]:
        """Keys on the current page, in order (for tests and the palette)."""
        return self._table().row_keys()

    def view_size(self) -> int:
        """How many tenants pass the current filter."""
        return len(self._view)
