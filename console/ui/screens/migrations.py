"""Migrations: tenants per revision, recent runs, and a live view of the run in progress."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from console.core.errors import ConsoleError, InvalidInput
from console.core.events import Phase, StepEvent
from console.core.identifiers import validate_tenant_key
from console.core.migrations.concurrency import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    concurrency_in_range,
)
from console.core.migrations.history import RunSummary
from console.core.migrations.plan import MigrationPlan, MigrationStatus, RevisionState
from console.core.migrations.run import RunProgress
from console.core.tenants.registry import parse_status
from console.ui.hints import error_text
from console.ui.polling import PollingScreen
from console.ui.screens.prompt import FORM_BINDINGS
from console.ui.widgets.keyed_table import KeyedTable

BAR_WIDTH = 30
# symbol and word, never colour alone
STATE_MARKS = {
    RevisionState.AT_TARGET: "✓ head",
    RevisionState.BEHIND: "… behind",
    RevisionState.UNKNOWN: "? unknown",
}
FAILED_MARK = "✗ FAILED"
PLAN_KEYS_SHOWN = 8
RUN_COLUMNS = (
    ("Run started", "started"),
    ("Target", "target"),
    ("Status", "status"),
    ("OK", "ok"),
    ("Failed", "failed"),
    ("Busy", "busy"),
)


class RunOptionsScreen(ModalScreen[dict[str, Any] | None]):
    """Target, concurrency and scope of a new run."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="run_options.cancel"), *FORM_BINDINGS]

    def __init__(self, head: str) -> None:
        super().__init__(classes="dialog")
        self._head = head

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("Start a migration run", classes="dialog-title")
            # Compact fields and buttons: the whole form, buttons included, fits at 80x24.
            yield Label("Target revision")
            yield Input(value=self._head, id="target", classes="field", compact=True)
            yield Label(f"Concurrency (1-{MAX_CONCURRENCY})")
            yield Input(
                value=str(DEFAULT_CONCURRENCY),
                id="concurrency",
                type="integer",
                classes="field",
                compact=True,
            )
            yield Label("Scope: tenant keys (comma-separated) or status:NAME; empty = all")
            yield Input(
                placeholder="e.g. acme,beta  or  status:inactive",
                id="scope",
                classes="field",
                compact=True,
            )
            yield Static("", id="run-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Plan…", id="plan", variant="primary", compact=True)

    @on(Input.Submitted)
    @on(Button.Pressed, "#plan")
    def _submit(self) -> None:
        try:
            self.dismiss(self._options())
        except InvalidInput as exc:
            self.query_one("#run-error", Static).update(error_text(exc))

    def _options(self) -> dict[str, Any]:
        concurrency = concurrency_in_range(self.query_one("#concurrency", Input).value.strip())
        scope = self.query_one("#scope", Input).value.strip()
        keys, status = None, None
        if scope.startswith("status:"):
            status = parse_status(scope.removeprefix("status:").strip())
        elif scope:
            keys = [validate_tenant_key(k.strip()) for k in scope.split(",") if k.strip()]
        return {
            "target": self.query_one("#target", Input).value.strip() or self._head,
            "concurrency": concurrency,
            "keys": keys,
            "status": status,
        }

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmPlanScreen(ModalScreen[bool]):
    """The plan of a run; Enter on 'Run' starts it, anything else cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm_plan.cancel")]

    def __init__(self, plan: MigrationPlan) -> None:
        super().__init__(classes="dialog")
        self._plan = plan

    def compose(self) -> ComposeResult:
        plan = self._plan
        lines = [
            f"target {plan.target}: {plan.pending} tenant(s) to migrate, "
            f"{len(plan.at_target)} already there, {len(plan.skipped)} skipped",
            "",
        ]
        for g in plan.groups:
            lines.append(
                f"  {g.from_rev} → {g.to_rev}: {len(g.tenants)} tenant(s) via {g.method}"
                + (f" ({g.reason})" if g.reason else "")
            )
            keys = [t.key for t in g.tenants]
            more = (
                f" … and {len(keys) - PLAN_KEYS_SHOWN} more" if len(keys) > PLAN_KEYS_SHOWN else ""
            )
            lines.append("    " + ", ".join(keys[:PLAN_KEYS_SHOWN]) + more)
        with Vertical(classes="dialog-box wide"):
            yield Label("Run this migration plan?", classes="dialog-title")
            with VerticalScroll(id="plan-text"):
                yield Static("\n".join(lines))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Run", id="run", variant="warning", disabled=not plan.pending)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#run")
    def _run(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ErrorDetailScreen(ModalScreen[None]):
    """One tenant's migration error, whole (the table's Detail column cuts it)."""

    BINDINGS = [Binding("escape,enter", "close", "Close", id="error_detail.close")]

    def __init__(self, key: str, error: str) -> None:
        super().__init__(classes="dialog")
        self._key = key
        self._error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide danger"):
            yield Label(f"Migration of {self._key} failed", classes="dialog-title", markup=False)
            with VerticalScroll(id="error-text"):
                yield Static(self._error, markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary", compact=True)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


class MigrationsScreen(PollingScreen):
    """Revisions, runs, and the live run (polled again whenever it is shown)."""

    POLL_NAME = "migrations"
    BINDINGS = [
        Binding("r", "start_run", "Run…", id="migrations.run"),
        Binding("f", "retry_failed", "Retry failed", id="migrations.retry"),
        Binding("c", "cancel_run", "Cancel run", id="migrations.cancel"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="migrations.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="migrations")
        self._failures: dict[str, str] = {}  # tenant -> error, of the results shown
        self.status: MigrationStatus | None = None

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield Static("loading…", id="mig-bars")
        runs: KeyedTable[str] = KeyedTable(update_width=False, id="mig-runs", cursor_type="row")
        for label, key in RUN_COLUMNS:
            runs.add_column(label, key=key)
        yield runs
        yield Static("No run in progress. r starts one.", id="mig-progress")
        tenants: KeyedTable[Text] = KeyedTable(
            key_column="tenant", update_width=False, id="mig-tenants", cursor_type="row"
        )
        tenants.add_column("Tenant", key="tenant")
        tenants.add_column("Result", key="result")
        tenants.add_column("Detail", key="detail")
        yield tenants
        yield Footer()

    def on_mount(self) -> None:
        self.goapp.migration_signal.subscribe(self, self._on_progress)
        self.goapp.migration_events.subscribe(self, self._on_event)
        if self.goapp.migration_state is not None:
            self._on_progress(self.goapp.migration_state)
        self.start_polling()

    def poll_interval(self) -> float:
        return self.goapp.settings.ui.refresh_interval * 5

    async def poll(self) -> None:
        """Revisions and runs."""
        self.status = await self.goapp.service.migrations.status()
        runs = await self.goapp.service.migrations.runs(10)
        self._show_state(self.status, runs)

    def _show_state(self, status: MigrationStatus, runs: list[RunSummary]) -> None:
        total = sum(r.tenants for r in status.revisions) or 1
        lines = [
            f"head {status.head} · {status.behind} tenant(s) behind · "
            f"{status.unknown} at an unknown revision",
            "",
        ]
        for r in status.revisions:
            filled = max(1, round(BAR_WIDTH * r.tenants / total))
            mark = STATE_MARKS[r.state]
            lines.append(f"{r.revision[:28]:<28} {'█' * filled:<{BAR_WIDTH}} {r.tenants:>6} {mark}")
        self.query_one("#mig-bars", Static).update("\n".join(lines))
        rows = {
            str(r.id): (
                r.started_at.isoformat()[:19].replace("T", " "),
                r.target,
                r.status,
                str(r.succeeded),
                str(r.failed),
                str(r.skipped_busy),
            )
            for r in runs
        }
        # A run that started or aged out refills the table (newest first); otherwise only
        # the cells that changed are updated.
        self.query_one("#mig-runs", KeyedTable).show(rows)

    def _on_progress(self, state: RunProgress) -> None:
        eta = f"{state.eta_s:.0f}s" if state.eta_s is not None else "—"
        running = self.goapp.migration_running()
        label = "running" if running else "finished"
        self.query_one("#mig-progress", Static).update(
            f"Run {str(state.run_id)[:8]} {label}: {state.total - state.remaining}/{state.total} · "
            f"✓ {state.done} · ✗ {state.failed} · busy {state.skipped} · "
            f"remaining {state.remaining} · {state.rate:.1f}/s · ETA {eta}"
            + ("" if running else "  (f retries failures)")
        )
        if not running:
            self.poll_soon()

    def _on_event(self, event: StepEvent) -> None:
        if event.tenant is None:
            return
        table: KeyedTable[Text] = self.query_one("#mig-tenants", KeyedTable)
        failed = event.phase is not Phase.DONE
        result = Text(FAILED_MARK if failed else "✓ migrated", end="")
        detail = Text(event.message, end="")  # error texts may hold square brackets: not markup
        was_failed = self._failures.pop(event.tenant, None) is not None
        if failed:
            self._failures[event.tenant] = event.message
        table.put(event.tenant, (Text(event.tenant, end=""), result, detail))
        if failed or was_failed:
            # Failures first; a stable sort keeps the others in the order they finished.
            table.sort("result", key=lambda result: str(result) != FAILED_MARK)

    def clear_results(self) -> None:
        """Empty the per-tenant table for a new run."""
        self.query_one("#mig-tenants", DataTable).clear()
        self._failures.clear()

    @on(DataTable.RowSelected, "#mig-tenants")
    def _show_failure(self, event: DataTable.RowSelected) -> None:
        """Enter on a failed tenant: its whole error in a dialog."""
        key = str(event.row_key.value)
        if key in self._failures:
            self.app.push_screen(ErrorDetailScreen(key, self._failures[key]))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Textual asks the binding's own node: the app's read-only rule must be applied here.
        return self.goapp.check_action(action, parameters)

    def action_start_run(self) -> None:
        if self.goapp.refuse_read_only("migrate"):
            return
        if self.goapp.migration_running():
            self.notify("a run is already in progress", severity="warning")
            return
        head = self.status.head if self.status else ""
        self.app.push_screen(RunOptionsScreen(head), self._plan_run)

    def _plan_run(self, options: dict[str, Any] | None) -> None:
        if options is not None:
            self._make_plan(options)

    @work(group="migrations-plan", exclusive=True, exit_on_error=False)
    async def _make_plan(self, options: dict[str, Any]) -> None:
        try:
            plan = await self.goapp.service.migrations.plan(
                options["target"], options["keys"], options["status"]
            )
        except ConsoleError as exc:
            self.notify(error_text(exc), title=exc.title, severity="error", markup=False)
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.clear_results()
                self.goapp.start_migration(plan, options["concurrency"])

        self.app.push_screen(ConfirmPlanScreen(plan), confirmed)

    def action_retry_failed(self) -> None:
        if self.goapp.refuse_read_only("migrate retry"):
            return
        if self.goapp.migration_running():
            self.notify("a run is already in progress", severity="warning")
            return
        self._retry()

    @work(group="migrations-plan", exclusive=True, exit_on_error=False)
    async def _retry(self) -> None:
        try:
            target, keys, _ = await self.goapp.service.migrations.run_failures(None)
            if not keys:
                self.notify("the last run has nothing to retry")
                return
            plan = await self.goapp.service.migrations.plan(target, keys)
        except ConsoleError as exc:
            self.notify(error_text(exc), title=exc.title, severity="error", markup=False)
            return
        self.clear_results()
        self.goapp.start_migration(plan, DEFAULT_CONCURRENCY)

    def action_cancel_run(self) -> None:
        if self.goapp.cancel_migration():
            self.notify("cancelling: tenants in flight finish, no new ones start")

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.poll_soon()
