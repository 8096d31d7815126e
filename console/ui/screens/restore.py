"""The restore form: a point in time (typed, checked as typed) or a backup from the tenant's
history (a list); Enter asks the core for the plan and shows it; Continue returns it for the
typed confirmation. Nothing is restored here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, DataTable, Input, Label, Static

from console.core.backups.catalog import BackupRecord, BackupStatus
from console.core.backups.recovery import RestorePlan, parse_target
from console.core.errors import ConsoleError, InvalidInput
from console.ui.hints import error_text
from console.ui.restore_view import CHOICE_COLUMNS, choice_cells, plan_lines
from console.ui.screens.prompt import FORM_BINDINGS
from console.ui.widgets.keyed_table import KeyedTable

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp

CHOICES_SHOWN = 50  # the newest backups offered in the list


@dataclass(frozen=True)
class RestoreChoice:
    """What the operator chose: a point in time or a backup, and the plan it gave."""

    to: datetime | None
    backup_id: str | None
    plan: RestorePlan


class PointValidator(Validator):
    """Accepts exactly what :func:`parse_target` (the CLI's ``--to``) accepts."""

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_target(value)
        except InvalidInput as exc:
            return self.failure(error_text(exc))
        return self.success()


class RestoreScreen(ModalScreen[RestoreChoice | None]):
    """Choose what to restore ``key`` to and see the plan; returns the choice or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restore.cancel"), *FORM_BINDINGS]

    def __init__(self, key: str) -> None:
        super().__init__(classes="dialog")
        self.key = key
        self.records: list[BackupRecord] = []
        self.choice: RestoreChoice | None = None

    @property
    def goapp(self) -> GoConsoleApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide", id="restore-box"):
            yield Label(f"Restore tenant {self.key}", classes="dialog-title", markup=False)
            with Horizontal(id="restore-point"):
                yield Label("Point in time (UTC) ")
                yield Input(
                    placeholder="YYYY-MM-DD HH:MM[:SS]",
                    id="restore-to",
                    validators=[PointValidator()],
                    validate_on=["changed", "submitted"],
                    compact=True,
                )
            yield Static("", id="restore-error", classes="field-error", markup=False)
            yield Label("…or a backup (Enter picks it):")
            table: KeyedTable[str] = KeyedTable(id="restore-backups", cursor_type="row")
            for key, label in CHOICE_COLUMNS:
                table.add_column(label, key=key)
            yield table
            with VerticalScroll(id="restore-plan-box", can_focus=False):
                yield Static("", id="restore-plan", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    "Continue…", id="continue", variant="warning", disabled=True, compact=True
                )

    def on_mount(self) -> None:
        self.query_one("#restore-to", Input).focus()
        self._show_plan_text(
            "Type a point in time and Enter, or pick a backup: the plan shows here."
        )
        self._load_history()

    @work(group="restore-history", exclusive=True, exit_on_error=False)
    async def _load_history(self) -> None:
        """The tenant's succeeded backups, newest first, into the list."""
        try:
            records = await self.goapp.service.backups.history(self.key, limit=CHOICES_SHOWN)
        except ConsoleError as exc:
            self._error(error_text(exc))
            return
        self.records = [r for r in records if r.status is BackupStatus.SUCCEEDED]
        table: KeyedTable[str] = self.query_one("#restore-backups", KeyedTable)
        table.show({str(r.id): choice_cells(r) for r in self.records})

    # -- choosing ----------------------------------------------------------------------------

    @on(Input.Changed, "#restore-to")
    def _typed(self, event: Input.Changed) -> None:
        result = event.validation_result
        problem = "" if result is None or result.is_valid else result.failure_descriptions[0]
        self._error(problem if event.value.strip() else "")

    @on(Input.Submitted, "#restore-to")
    def _submit_point(self, event: Input.Submitted) -> None:
        try:
            to = parse_target(event.value)
        except InvalidInput as exc:
            self._error(error_text(exc))
            return
        self._plan(to, None)

    @on(DataTable.RowSelected, "#restore-backups")
    def _pick(self, event: DataTable.RowSelected) -> None:
        self._plan(None, str(event.row_key.value))

    @work(group="restore-plan", exclusive=True, exit_on_error=False)
    async def _plan(self, to: datetime | None, backup_id: str | None) -> None:
        """Ask the core for the plan of this choice; show it, or the one-line refusal."""
        self.choice = None
        self.query_one("#continue", Button).disabled = True
        self._error("")
        self._show_plan_text("planning…")
        try:
            plan = await self.goapp.service.backups.restore_plan(
                self.key, to=to, backup_id=backup_id
            )
        except ConsoleError as exc:
            self._error(error_text(exc))
            self._show_plan_text("No plan: see the line above.")
            return
        self.choice = RestoreChoice(to, backup_id, plan)
        self._show_plan_text("\n".join(plan_lines(plan)))
        self.query_one("#continue", Button).disabled = False

    def _show_plan_text(self, text: str) -> None:
        self.query_one("#restore-plan", Static).update(text)

    def _error(self, text: str) -> None:
        self.query_one("#restore-error", Static).update(text)

    def plan_text(self) -> str:
        """The plan as shown (for tests)."""
        return str(self.query_one("#restore-plan", Static).render())

    def error_line(self) -> str:
        """The error line as shown (for tests)."""
        return str(self.query_one("#restore-error", Static).render())

    # -- leaving -----------------------------------------------------------------------------

    @on(Button.Pressed, "#continue")
    def _continue(self) -> None:
        if self.choice is not None:
            self.dismiss(self.choice)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
