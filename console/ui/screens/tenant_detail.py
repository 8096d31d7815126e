"""One tenant: registry row, config, tables with sizes and RLS state, recent audit, actions,
and the live progress of the operation running on it."""

from __future__ import annotations

import json
from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Log, Static

from console.core.backups.catalog import BackupRecord
from console.core.backups.replaced import ReplacedSchema
from console.core.display import PHASE_MARKS, human_growth, human_size
from console.core.errors import NotFound
from console.core.stats.history import GROWTH_DAYS, TenantStats
from console.core.tenants.detail import TenantDetail
from console.core.tenants.registry import TenantStatus
from console.ui.backup_view import last_backup
from console.ui.hints import hint_text
from console.ui.polling import PollingScreen
from console.ui.restore_flow import request_restore, request_rollback
from console.ui.restore_view import step_line
from console.ui.screens.base import Command
from console.ui.tenant_view import status_label
from console.ui.tracker import OpState, TrackedOperation
from console.ui.widgets.keyed_table import KeyedTable

# RESTORING: a restore that did not finish, which a rerun completes.
RESTORABLE = frozenset(
    {TenantStatus.ACTIVE, TenantStatus.INACTIVE, TenantStatus.ARCHIVED, TenantStatus.RESTORING}
)
RESTORE_OPERATIONS = frozenset({"restore", "rollback"})
ACTION_WORDS = {"resume_provision": "resume provision", "rollback": "roll back"}
ACTIONS_BY_STATUS: dict[TenantStatus, tuple[str, ...]] = {
    TenantStatus.ACTIVE: ("deactivate", "offboard"),
    TenantStatus.INACTIVE: ("reactivate", "offboard"),
    TenantStatus.DEACTIVATING: ("deactivate",),
    TenantStatus.OFFBOARDING: ("offboard",),
    TenantStatus.INITIALIZING: ("resume_provision",),
    TenantStatus.FAILED: ("resume_provision",),
    TenantStatus.ARCHIVED: (),
    TenantStatus.RESTORING: (),
}


class TenantDetailScreen(PollingScreen):
    """Everything about one tenant; its actions follow its state."""

    BINDINGS = [
        Binding("d", "tenant('deactivate')", "Deactivate", id="tenant.deactivate"),
        Binding("r", "tenant('reactivate')", "Reactivate", id="tenant.reactivate"),
        Binding("o", "tenant('offboard')", "Offboard", id="tenant.offboard"),
        Binding("p", "tenant('resume_provision')", "Finish provision", id="tenant.provision"),
        Binding("R", "restore('restore')", "Restore…", id="tenant.restore"),
        Binding("U", "restore('rollback')", "Roll back", id="tenant.rollback"),
        Binding("escape", "back", "Back", id="tenant.back"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="tenant.refresh"),
    ]

    def __init__(self, key: str) -> None:
        super().__init__(id=f"tenant-{key}")
        self.key = key
        self.detail: TenantDetail | None = None
        self.last_backup: BackupRecord | None = None
        self.stats: TenantStats | None = None  # newest figures from the statistics history
        self.replaced: list[ReplacedSchema] = []
        self.busy: str | None = None
        self._shown_events = 0
        self._shown_op: TrackedOperation | None = None

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        with VerticalScroll(id="detail"):
            with Horizontal(id="detail-top"):
                yield Static(f"Tenant {self.key}: loading…", id="summary")
                with Vertical(id="detail-side"):
                    yield Static("", id="busy", markup=False)  # holder's application_name
                    yield Static("", id="available")
            yield Static("Operation progress", classes="section")
            yield Static("", id="restore-steps", markup=False)
            yield Log(id="progress", max_lines=500)
            tables: KeyedTable[str] = KeyedTable(
                update_width=False, id="detail-tables", cursor_type="row"
            )
            tables.add_columns("Table", "Est. rows", "Size", "RLS", "Forced", "Policies")
            yield Static("Schema objects", classes="section")
            yield tables
            yield Static("Recent audit entries", classes="section")
            audit: KeyedTable[str] = KeyedTable(
                update_width=False, id="detail-audit", cursor_type="row"
            )
            audit.add_columns("When (UTC)", "Action", "Actor", "From")
            yield audit
        yield Footer()

    def on_mount(self) -> None:
        self.goapp.operation_signal.subscribe(self, self._on_operation)
        self._render_operation()
        self.start_polling()

    # -- data --------------------------------------------------------------------------------

    def poll_name(self) -> str:
        return f"tenant {self.key}"

    async def poll(self) -> None:
        """Reload the tenant."""
        try:
            service = self.goapp.service
            busy = await service.busy_tenants()
            detail = await service.tenant_detail(self.key)
            self.last_backup = await service.backups.latest(self.key)
            self.replaced = await service.backups.replaced(self.key)
            self.stats = await service.stats.of(self.key, self.goapp.clock())
            # set last: once it is, the view shows what was read (tests wait for it)
            self.busy, self.detail = busy.get(self.key), detail
        except NotFound:
            self.query_one("#summary", Static).update(
                f"Tenant {self.key} is not in the registry (yet)."
            )
            return
        self._render_detail()

    def status(self) -> TenantStatus | None:
        """The tenant's status as last loaded."""
        return self.detail.tenant.status if self.detail else None

    def focused_tenant(self) -> str | None:
        return self.key

    def status_of(self, key: str) -> TenantStatus | None:
        return self.status() if key == self.key else None

    def _render_detail(self) -> None:
        assert self.detail is not None
        t = self.detail.tenant
        status = t.status
        self.query_one("#summary", Static).update(
            Content.assemble(
                (t.display_name, "bold"),  # as typed: not parsed as markup
                "\n".join(
                    [
                        f"  ({t.key})",
                        f"status    {status_label(status, self.busy is not None)}",
                        f"schema    {t.schema_name}",
                        f"revision  {self.detail.revision or '—'}",
                        f"backup    {last_backup(self.last_backup, self.goapp.clock())}",
                        f"size      {self._size_text()}",
                        *(
                            f"replaced  {r.schema} (kept until {r.keep_until:%Y-%m-%d %H:%M}Z)"
                            for r in self.replaced
                        ),
                        f"id        {t.id}",
                        f"cluster   {t.cluster}   created {t.created_at.isoformat()[:19]}",
                        f"config    {json.dumps(t.config)}",
                    ]
                ),
            )
        )
        self.query_one("#busy", Static).update(
            f"⟳ BUSY: {self.busy} — actions disabled" if self.busy else ""
        )
        self.query_one("#busy", Static).set_class(self.busy is not None, "busy")
        self.query_one("#available", Static).update(self._available_text(status))
        self._fill(
            "#detail-tables",
            [
                (
                    r.table,
                    f"{r.estimated_rows:,}",
                    human_size(r.bytes),
                    "✓ yes" if r.rls_enabled else "✗ NO",
                    "✓ yes" if r.rls_forced else "✗ NO",
                    str(r.policies),
                )
                for r in self.detail.tables
            ],
            [r.table for r in self.detail.tables],
        )
        self._fill(
            "#detail-audit",
            [
                (
                    a.action_timestamp.isoformat()[:19].replace("T", " "),
                    a.action_type,
                    f"{a.actor}@{a.actor_host}",
                    a.actor_address,
                )
                for a in self.detail.audit
            ],
            [str(a.id) for a in self.detail.audit],
        )
        self.refresh_bindings()

    def _size_text(self) -> str:
        """Total size and the week's growth from the statistics history."""
        if self.stats is None:
            return "— (no statistics collected yet)"
        total = human_size(self.stats.total_bytes)
        return f"{total}, {human_growth(self.stats.growth_bytes)} in {GROWTH_DAYS} days"

    def _fill(self, selector: str, rows: list[tuple[str, ...]], keys: list[str]) -> None:
        table: KeyedTable[str] = self.query_one(selector, KeyedTable)
        table.show(dict(zip(keys, rows, strict=True)))

    def _available_text(self, status: TenantStatus) -> str:
        if self.goapp.read_only:
            return "Read-only mode: no actions."
        names = ACTIONS_BY_STATUS[status] + self._restore_actions(status)
        if not names:
            return "No actions in this state."
        if self.busy or self._op_running():
            return "Actions disabled while an operation runs."
        keys = {
            "deactivate": "d",
            "reactivate": "r",
            "offboard": "o",
            "resume_provision": "p",
            "restore": "R",
            "rollback": "U",
        }
        return "Actions: " + ", ".join(f"{ACTION_WORDS.get(n, n)} ({keys[n]})" for n in names)

    def _restore_actions(self, status: TenantStatus) -> tuple[str, ...]:
        """Restore (see RESTORABLE), and roll back while a replaced
        schema exists (ACTIVE and INACTIVE)."""
        if status not in RESTORABLE:
            return ()
        rollback = self.replaced and status is not TenantStatus.ARCHIVED
        return ("restore", "rollback") if rollback else ("restore",)

    def _op_running(self) -> bool:
        op = self.goapp.tracker.latest(self.key)
        return op is not None and op.state is OpState.RUNNING

    # -- operation progress ---------------------------------------------------------------

    def _on_operation(self, op: TrackedOperation) -> None:
        if op.key == self.key:
            self._render_operation()
            if op.state is not OpState.RUNNING:
                self.poll_soon()

    def _render_operation(self) -> None:
        op = self.goapp.tracker.latest(self.key)
        log = self.query_one("#progress", Log)
        if op is None:
            return
        steps = self.query_one("#restore-steps", Static)
        steps.display = op.name in RESTORE_OPERATIONS
        steps.update(step_line(op.events))
        if op is not self._shown_op:
            log.clear()
            self._shown_op, self._shown_events = op, 0
            log.write_line(f"{op.name} {op.key} started {op.started:%H:%M:%S} UTC")
        for event in op.events[self._shown_events :]:
            took = f" ({event.duration_ms:.0f} ms)" if event.duration_ms is not None else ""
            text = event.message + hint_text(event.hint)
            log.write_line(f"{PHASE_MARKS[event.phase]} {event.step}: {text}{took}")
        self._shown_events = len(op.events)
        if op.state is not OpState.RUNNING and op.outcome and not log.lines[-1].startswith("="):
            log.write_lines(op.report)
            log.write_line(f"= {op.outcome}")
        log.scroll_end(animate=False)  # the latest lines, whatever the log's height
        self.refresh_bindings()

    # -- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in {"tenant", "restore"}:
            return True
        name = str(parameters[0])
        status = self.status()
        if self.goapp.read_only or status is None:
            return False
        offered = ACTIONS_BY_STATUS[status] if action == "tenant" else self._restore_actions(status)
        if name not in offered:
            return False
        # Hidden, not merely dimmed: the footer must not offer what the BUSY banner forbids.
        return not (self.busy or self._op_running())

    def action_tenant(self, name: str) -> None:
        self.goapp.request_action(name, self.key)

    def action_restore(self, name: str) -> None:
        if name == "rollback":
            request_rollback(self.goapp, self.key)
        else:
            request_restore(self.goapp, self.key)

    def palette_commands(self) -> list[Command]:
        """Restore and roll back, when they apply (never in read-only mode)."""
        status = self.status()
        if self.goapp.read_only or status is None:
            return []
        labels = {"restore": f"Restore {self.key}…", "rollback": f"Roll back {self.key}"}
        helps = {
            "restore": "to a point in time or a backup",
            "rollback": "swap the replaced schema back",
        }
        return [
            (labels[n], partial(self.action_restore, n), helps[n])
            for n in self._restore_actions(status)
        ]

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh_now(self) -> None:
        self.poll_soon()
