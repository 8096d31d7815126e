"""Jobs: the schedule (next run, last outcome), the leader, the history of runs with filters by
job and outcome, the detail of a run (Enter), and "run now" of the job under the cursor after a
confirmation (refused in read-only mode and while the job runs anywhere on the cluster)."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Label, Static

from console.core.errors import ConsoleError, JobBusy
from console.core.scheduler.history import JobRun, Outcome
from console.core.scheduler.service import ScheduledJob
from console.ui.hints import error_text
from console.ui.jobs_view import (
    HISTORY_COLUMNS,
    OUTCOME_FILTERS,
    SCHEDULE_COLUMNS,
    detail_lines,
    filter_line,
    history_cells,
    leader_line,
    schedule_cells,
)
from console.ui.polling import PollingScreen
from console.ui.screens.base import Command
from console.ui.widgets.keyed_table import KeyedTable

HISTORY_LIMIT = 100


class JobsScreen(PollingScreen):
    """The scheduler's jobs, its leader and its history of runs."""

    POLL_NAME = "jobs"
    CSS_PATH = "jobs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_job", "Run now", id="jobs.run_now"),
        Binding("f", "filter_job", "This job only", id="jobs.filter_job"),
        Binding("o", "filter_outcome", "Outcome filter", id="jobs.filter_outcome"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="jobs.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="area-jobs")
        self.jobs: dict[str, ScheduledJob] = {}
        self.runs: dict[str, JobRun] = {}
        self.job_filter: str | None = None
        self.outcome_filter: Outcome | None = None

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield Static("reading the schedule…", id="jobs-leader", markup=False)
        schedule: KeyedTable[str] = KeyedTable(
            key_column="job", id="jobs-schedule", cursor_type="row"
        )
        for key, label in SCHEDULE_COLUMNS:
            schedule.add_column(label, key=key)
        yield schedule
        yield Static("", id="jobs-filter", markup=False)
        history: KeyedTable[str] = KeyedTable(id="jobs-history", cursor_type="row")
        for key, label in HISTORY_COLUMNS:
            history.add_column(label, key=key)
        yield history
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#jobs-schedule", KeyedTable).focus()
        self.start_polling()

    # -- data --------------------------------------------------------------------------------

    async def poll(self) -> None:
        """The schedule, the leader and the filtered history, shown by diff."""
        scheduler = self.goapp.service.scheduler
        jobs = await scheduler.schedule()
        runs = await scheduler.history(self.job_filter, self.outcome_filter, HISTORY_LIMIT)
        leader = await scheduler.current_leader()
        self.jobs = {job.name: job for job in jobs}
        self.runs = {str(run.id): run for run in runs}
        role = scheduler.role.value if self.goapp.hosts_scheduler else "off"
        self.query_one("#jobs-leader", Static).update(leader_line(leader, role))
        self._table("#jobs-schedule").show({job.name: schedule_cells(job) for job in jobs})
        self._table("#jobs-history").show({key: history_cells(r) for key, r in self.runs.items()})
        self._show_filter()

    def _table(self, selector: str) -> KeyedTable[str]:
        return self.query_one(selector, KeyedTable)

    def _show_filter(self) -> None:
        self.query_one("#jobs-filter", Static).update(
            filter_line(self.job_filter, self.outcome_filter, len(self.runs))
        )

    def focused_job(self) -> str | None:
        """The job under the schedule's cursor."""
        return self._table("#jobs-schedule").cursor_key()

    def shown_runs(self) -> list[JobRun]:
        """The history as shown, newest first (for tests)."""
        return [self.runs[key] for key in self._table("#jobs-history").row_keys()]

    # -- filters and detail ------------------------------------------------------------------

    def action_filter_job(self) -> None:
        """Show the history of the job under the cursor only, or of every job again."""
        job = self.focused_job()
        self.job_filter = None if self.job_filter or job is None else job
        self._show_filter()
        self.poll_soon()

    def action_filter_outcome(self) -> None:
        """The next outcome in the filter's cycle (any, running, succeeded, …)."""
        at = OUTCOME_FILTERS.index(self.outcome_filter)
        self.outcome_filter = OUTCOME_FILTERS[(at + 1) % len(OUTCOME_FILTERS)]
        self._show_filter()
        self.poll_soon()

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.poll_soon()

    @on(DataTable.RowSelected, "#jobs-history")
    def _open_run(self) -> None:
        key = self._table("#jobs-history").cursor_key()
        if key is not None and key in self.runs:
            self.app.push_screen(RunDetailScreen(self.runs[key]))

    # -- run now -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run_job":
            return not self.goapp.read_only
        return True

    def action_run_job(self) -> None:
        job = self.focused_job()
        if job is not None:
            self.request_run(job)

    def request_run(self, name: str) -> None:
        """Ask, then run job ``name`` now (refused in read-only mode)."""
        if self.goapp.refuse_read_only(f"jobs run {name}"):
            return
        job = self.goapp.service.scheduler.job(name)

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.run_worker(self._run(name), group=f"run-{name}", exit_on_error=False)
            else:
                self.notify(f"run of {name} cancelled: nothing was done")

        self.app.push_screen(ConfirmRunScreen(name, job.description), confirmed)

    async def _run(self, name: str) -> None:
        self.notify(f"{name} started", title="Run now")
        self.poll_soon()
        try:
            run = await self.goapp.service.scheduler.run_now(name)
        except JobBusy as exc:
            self.notify(error_text(exc), title="Job busy", severity="warning", markup=False)
            return
        except ConsoleError as exc:
            self.notify(error_text(exc), title=exc.title, severity="error", markup=False)
            return
        finally:
            self.poll_soon()
        self.notify(
            f"{name} {run.outcome.value}: {run.summary}",
            title="Run finished",
            severity="error" if run.outcome is Outcome.FAILED else "information",
            markup=False,
        )

    def palette_commands(self) -> list[Command]:
        """Run each job now (not in read-only mode)."""
        if self.goapp.read_only:
            return []
        return [
            (f"Run job {name} now", partial(self.request_run, name), job.description)
            for name, job in self.jobs.items()
        ]


class ConfirmRunScreen(ModalScreen[bool]):
    """Run a job now? The default is not to (Escape or n)."""

    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel", id="run.cancel"),
        Binding("y", "confirm", "Run now", id="run.confirm"),
    ]

    def __init__(self, job: str, description: str) -> None:
        super().__init__(classes="dialog")
        self._job = job
        self._description = description

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(f"Run job {self._job} now?", classes="dialog-title", markup=False)
            yield Static(
                f"{self._description}, on this console, whoever leads the scheduler; "
                "audited as jobs.run.",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary", compact=True)
                yield Button("Run now (y)", id="confirm", variant="warning", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)


class RunDetailScreen(ModalScreen[None]):
    """One run: when, where, how it ended, its summary and each tenant that failed."""

    BINDINGS = [Binding("escape,q,enter", "close", "Close", id="run_detail.close")]

    def __init__(self, run: JobRun) -> None:
        super().__init__(classes="dialog")
        self.run = run

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield Label(
                f"Run of {self.run.job}: {self.run.outcome.value}",
                classes="dialog-title",
                markup=False,
            )
            with VerticalScroll(id="run-detail"):
                yield Static("\n".join(detail_lines(self.run)), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
