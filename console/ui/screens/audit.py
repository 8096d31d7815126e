"""The audit log, newest first, filterable by tenant, action and actor, following new entries."""

from __future__ import annotations

import json

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, Static

from console.core.registry import AuditEntry
from console.ui.screens.base import ConsoleScreen

AUDIT_LIMIT = 500


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


class AuditScreen(ConsoleScreen):
    """Audit entries; new ones appear at the top as they are written."""

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="audit.filter"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="audit.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="audit")
        self._entries: dict[str, AuditEntry] = {}
        self._filters: tuple[str | None, str | None, str | None] = (None, None, None)
        self._timer: Timer | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        with Horizontal(id="audit-tools"):
            yield Input(placeholder="tenant key", id="f-tenant")
            yield Input(placeholder="action (prefix)", id="f-action")
            yield Input(placeholder="actor", id="f-actor")
        table: DataTable[str] = DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        table.add_column("When (UTC)", key="when")
        table.add_column("Tenant", key="tenant")
        table.add_column("Action", key="action")
        table.add_column("Actor", key="actor")
        table.add_column("From", key="from")
        yield table
        yield Static("", id="audit-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.refresh_audit()

    @work(group="audit-refresh", exclusive=True, exit_on_error=False)
    async def refresh_audit(self) -> None:
        """Fetch the newest entries under the filters; add the new ones (never overlapping)."""
        try:
            if self.is_current or not self.loaded:
                key, action, actor = self._filters
                entries = await self.goapp.service.audit_filtered(key, action, actor, AUDIT_LIMIT)
                self._apply(entries)
                self.loaded = True
        except Exception as exc:  # reported, and the next refresh retries
            self.goapp.report_refresh_error("audit", exc)
        finally:
            if self._timer is not None:
                self._timer.stop()
            self._timer = self.set_timer(
                self.goapp.settings.ui.refresh_interval, self.refresh_audit
            )

    def _apply(self, entries: list[AuditEntry]) -> None:
        table: DataTable[str] = self.query_one(DataTable)
        wanted = {str(e.id): e for e in entries}
        with self.app.batch_update():
            for gone in set(self._entries) - set(wanted):
                table.remove_row(gone)
            new = [e for key, e in wanted.items() if key not in self._entries]
            for e in new:
                table.add_row(
                    e.action_timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:23],
                    e.tenant_key or "—",
                    e.action_type,
                    f"{e.actor}@{e.actor_host}",
                    e.actor_address,
                    key=str(e.id),
                )
            if new:
                table.sort("when", reverse=True)
        self._entries = wanted
        self.query_one("#audit-status", Static).update(
            f"{len(wanted)} entries (newest {AUDIT_LIMIT} shown) · following live"
        )

    @on(Input.Submitted)
    def _filter(self) -> None:
        values = [
            self.query_one(f"#f-{name}", Input).value.strip() or None
            for name in ("tenant", "action", "actor")
        ]
        self._filters = (values[0], values[1], values[2])
        self.query_one(DataTable).focus()
        self.refresh_audit()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        entry = self._entries.get(str(event.row_key.value))
        if entry is not None:
            self.app.push_screen(AuditDetailScreen(entry))

    def action_focus_filter(self) -> None:
        self.query_one("#f-tenant", Input).focus()

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.refresh_audit()

    def shown_actions(self) -> list[str]:
        """Action types in display order (for tests)."""
        table: DataTable[str] = self.query_one(DataTable)
        return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
