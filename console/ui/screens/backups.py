"""Backups: a row per tenant with its newest full and incremental, chain length, how far it was
checked (restored or not) and state in words (OK, STALE, FAILED, NEVER); the replaced schemas
restores left behind; runs, verifications and drills of the tenant under the cursor or of every
tenant, with their progress; Enter opens the tenant's history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Log, Static

from console.core.backups.catalog import BackupKind
from console.core.backups.replaced import ReplacedSchema
from console.core.backups.report import BackupProgress
from console.core.backups.summary import BackupState, TenantBackups
from console.core.display import PHASE_MARKS
from console.core.events import EventSink
from console.core.tenants.registry import TenantStatus
from console.ui.backup_view import (
    COLUMNS,
    cells,
    progress_line,
    run_outcome,
    summary_line,
    verify_outcome,
)
from console.ui.polling import PollingScreen
from console.ui.restore_view import REPLACED_COLUMNS, drill_note, drill_outcome, replaced_cells
from console.ui.screens.backup_history import BackupHistoryScreen
from console.ui.screens.base import Command
from console.ui.tracker import OpState, TrackedOperation
from console.ui.widgets.keyed_table import KeyedTable

EVERY = "all tenants"  # what a run over every tenant is tracked as (no tenant key has a space)
SAMPLE = "a sample of tenants"  # what a drill of ``backup.drill_sample`` tenants is tracked as
# action -> what the operation is called, and the palette's help
ACTIONS = {
    "full": ("backup full", "full backup"),
    "incremental": ("backup incremental", "incremental backup (a full when the chain cannot grow)"),
    "verify": ("verify", "checksum, decrypt, decompress, list the tables"),
    "restore_test": ("verify --restore-test", "restore into a scratch database and compare"),
    "drill": ("drill", "restore the newest chain into a scratch schema, validate, drop it"),
}
VERIFY = frozenset({"verify", "restore_test"})
OUTCOMES: dict[str, Callable[[Any], tuple[bool, str]]] = {
    "verify": verify_outcome,
    "restore_test": verify_outcome,
    "drill": drill_outcome,
}
PROGRESS_EVERY_S = 0.5
LOG_LINES = 200


class BackupTable(KeyedTable[Text]):
    """The tenants' backups (keyed by tenant); its component classes carry the theme's colours
    of the state words."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"backup-table--alert", "backup-table--ok"}

    def __init__(self) -> None:
        super().__init__(key_column="key", id="backup-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def styled(self, row: TenantBackups, texts: tuple[str, ...]) -> list[Text]:
        """The cells as Text, the state word coloured (it says it in words too)."""
        alert = row.states != (BackupState.OK,)
        style = self.get_component_rich_style(
            f"backup-table--{'alert' if alert else 'ok'}", partial=True
        )
        found = [Text(text) for text in texts]
        found[1] = Text(texts[1], style=style if style else Style())
        return found


class BackupsScreen(PollingScreen):
    """Every tenant's backups; actions apply to the tenant under the cursor or to all."""

    POLL_NAME = "backups"
    CSS_PATH = "backups.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "backup('full')", "Full", id="backups.full"),
        Binding("i", "backup('incremental')", "Incremental", id="backups.incremental"),
        Binding("v", "backup('verify')", "Verify", id="backups.verify"),
        Binding("r", "backup('restore_test')", "Restore test", id="backups.restore_test"),
        Binding("d", "backup('drill')", "Drill", id="backups.drill"),
        Binding("F", "backup('full', True)", "Full (all)", id="backups.full_all"),
        Binding(
            "I",
            "backup('incremental', True)",
            "Incremental, all tenants",
            show=False,
            id="backups.incremental_all",
        ),
        Binding("V", "backup('verify', True)", "Verify all", show=False, id="backups.verify_all"),
        Binding(
            "R",
            "backup('restore_test', True)",
            "Restore test, all",
            show=False,
            id="backups.restore_test_all",
        ),
        Binding(
            "D", "backup('drill', True)", "Drill a sample", show=False, id="backups.drill_sample"
        ),
        Binding("ctrl+r", "refresh_now", "Refresh", id="backups.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="backups")
        self.rows: dict[str, TenantBackups] = {}
        self.replaced: list[ReplacedSchema] = []
        self.job: TrackedOperation | None = None
        self.progress: BackupProgress | None = None
        self._shown_events = 0
        self._ticker: Timer | None = None
        self._updated = ""

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield Static("reading the backup catalog…", id="backup-status", markup=False)
        yield Static("", id="backup-focus", markup=False)
        yield BackupTable()
        yield Static("", id="replaced-title", markup=False)
        replaced: KeyedTable[str] = KeyedTable(id="replaced-table", cursor_type="row")
        for key, label in REPLACED_COLUMNS:
            replaced.add_column(label, key=key)
        yield replaced
        yield Static("", id="backup-progress", markup=False)
        yield Log(id="backup-log", max_lines=LOG_LINES)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BackupTable).focus()
        self.goapp.operation_signal.subscribe(self, self._on_operation)
        self.start_polling()

    # -- data --------------------------------------------------------------------------------

    async def poll(self) -> None:
        """Every tenant's summary, shown by diff."""
        now = self.goapp.clock()
        rows = await self.goapp.service.backups.summaries(now=now)
        self.replaced = await self.goapp.service.backups.replaced()
        self.rows = {row.key: row for row in rows}
        self._updated = now.strftime("%H:%M:%SZ")
        table = self.query_one(BackupTable)
        table.show({row.key: table.styled(row, cells(row, now)) for row in rows})
        self._show_status()
        self._show_focus()
        self._show_replaced(now)

    def _show_replaced(self, now: datetime) -> None:
        """The replaced schemas kept after restores (the table only when there are some)."""
        count = len(self.replaced)
        title = self.query_one("#replaced-title", Static)
        title.update(
            f"Replaced schemas: {count}, kept {self.goapp.settings.backup.keep_replaced_days} "
            "days after a restore (Roll back on the tenant's view swaps one back)"
            if count
            else "Replaced schemas: none"
        )
        table: KeyedTable[str] = self.query_one("#replaced-table", KeyedTable)
        table.display = count > 0
        table.show({r.schema: replaced_cells(r, now) for r in self.replaced})

    def _show_status(self) -> None:
        settings = self.goapp.settings
        self.query_one("#backup-status", Static).update(
            f"{summary_line(list(self.rows.values()))} · updated {self._updated} · fulls "
            f"{settings.schedule.full_backup}, {settings.backup.stale_grace_hours:g} h grace"
        )

    def _show_focus(self) -> None:
        """Why the tenant under the cursor is STALE or FAILED (empty when it is OK)."""
        row = self.rows.get(self.focused_tenant() or "")
        notes = []
        if row is not None and row.stale_reason:
            notes.append(row.stale_reason)
        drill = drill_note(row.last_full, self.goapp.clock()) if row and row.last_full else None
        if drill is not None:
            notes.append(drill)
        if row is not None and row.failing and row.last_failure is not None:
            failure = row.last_failure
            notes.append(f"{failure.kind.value} failed {failure.at:%m-%d %H:%M}: {failure.error}")
        line = f"{row.key}: " + " · ".join(notes) if row is not None and notes else ""
        self.query_one("#backup-focus", Static).update(line)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_focus()

    def focused_tenant(self) -> str | None:
        """The tenant under the cursor."""
        return self.query_one(BackupTable).cursor_key()

    def status_of(self, key: str) -> TenantStatus | None:
        row = self.rows.get(key)
        return row.status if row else None

    def shown_keys(self) -> list[str]:
        """Tenant keys in table order (for tests)."""
        return self.query_one(BackupTable).row_keys()

    def state_of(self, key: str) -> str:
        """The state cell of ``key`` as shown (for tests)."""
        return str(self.query_one(BackupTable).get_cell(key, "state"))

    # -- history -----------------------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _open(self) -> None:
        key = self.focused_tenant()
        if key is not None:
            self.open_history(key)

    def open_history(self, key: str) -> None:
        """Push ``key``'s backup history (table and size chart)."""
        self.app.push_screen(BackupHistoryScreen(key))

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "backup":
            return not self.goapp.read_only
        return True

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.poll_soon()

    def action_backup(self, what: str, every: bool = False) -> None:
        self.request(what, None if every else self.focused_tenant())

    def running(self) -> bool:
        """Whether a run or verification started here is in progress."""
        return self.job is not None and self.job.state is OpState.RUNNING

    def request(self, what: str, key: str | None) -> None:
        """Start ``what`` (one of ACTIONS) on tenant ``key``, or on every tenant when None."""
        name = ACTIONS[what][0]
        if self.goapp.refuse_read_only(name):
            return
        if self.running():
            assert self.job is not None
            self.notify(
                f"{self.job.name} {self.job.key} is still running: one run at a time",
                severity="warning",
            )
            return
        keys = None if key is None else [key]
        progress = BackupProgress()
        self.progress = progress
        self._shown_events = 0
        self.query_one("#backup-log", Log).clear()
        self.job = self.goapp.operations.report_operation(
            name,
            key or (SAMPLE if what == "drill" else EVERY),
            partial(self._call, what, keys, progress),
            OUTCOMES.get(what, run_outcome),
            self._ended,
        )
        self.set_class(True, "job")
        self._ticker = self.set_interval(PROGRESS_EVERY_S, self._show_job)
        self._show_job()

    def _call(
        self, what: str, keys: list[str] | None, progress: BackupProgress, sink: EventSink
    ) -> Awaitable[Any]:
        backups = self.goapp.service.backups
        if what == "drill":
            return backups.drill(keys, sink=sink, progress=progress)
        if what in VERIFY:
            return backups.verify(
                keys, restore_test=what == "restore_test", sink=sink, progress=progress
            )
        kind = BackupKind.FULL if what == "full" else BackupKind.INCREMENTAL
        return backups.run(keys, kind, sink=sink, progress=progress)

    def _ended(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._show_job()
        self.poll_soon()

    def _on_operation(self, op: TrackedOperation) -> None:
        if op is self.job:
            self._show_job()

    def _show_job(self) -> None:
        """The progress line and the new events of the run started here."""
        job = self.job
        if job is None:
            return
        line = self.query_one("#backup-progress", Static)
        if job.state is OpState.RUNNING:
            assert self.progress is not None
            line.update(f"… {job.name} {job.key}: {progress_line(self.progress)}")
        else:
            mark = "✗" if job.state is OpState.FAILED else "✓"
            line.update(f"{mark} {job.name} {job.key}: {job.outcome or job.state.value}")
        line.set_class(job.state is OpState.FAILED, "failed")
        log = self.query_one("#backup-log", Log)
        for event in job.events[self._shown_events :]:
            who = f"{event.tenant} " if event.tenant and job.key in (EVERY, SAMPLE) else ""
            log.write_line(f"{PHASE_MARKS[event.phase]} {who}{event.step}: {event.message}")
        self._shown_events = len(job.events)

    def palette_commands(self) -> list[Command]:
        """History of the tenant under the cursor; runs and verifications of it and of every
        tenant (none in read-only mode)."""
        key = self.focused_tenant()
        found: list[Command] = []
        if key is not None:
            found.append((f"Backup history of {key}", partial(self.open_history, key), "chart"))
        if self.goapp.read_only:
            return found
        for what, (name, help_text) in ACTIONS.items():
            if key is not None:
                found.append((f"Run {name} of {key}", partial(self.request, what, key), help_text))
            every = SAMPLE if what == "drill" else EVERY
            found.append((f"Run {name} of {every}", partial(self.request, what, None), help_text))
        return found
