"""Health: tiles (overall, replication, connections, pools, backups, jobs), every check with
its value, threshold, state and since when, and graphs of the last hour from the recorded
samples plus this screen's own checks.

One check at a time (:class:`PollingScreen`, every ``health.screen_interval`` seconds). The
checks never fail: a cluster that goes away is a CRIT ``connectivity`` check with the reason,
and the screen recovers by itself when it answers again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from console.core.health.model import HealthReport
from console.core.health.service import GRAPHED
from console.ui.polling import PollingScreen
from console.ui.widgets.health_view import WINDOW_MIN, HealthPlots, HealthTiles, Points

COLUMNS = ("Check", "State", "Value", "Threshold", "Since", "Detail")


class HealthScreen(PollingScreen):
    """The cluster's health at a glance."""

    POLL_NAME = "health"
    CSS_PATH = "health.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "refresh_now", "Refresh", id="health.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="area-health")
        self.report: HealthReport | None = None
        self._live: Points = {name: [] for name in GRAPHED}
        self._recorded: Points = {}
        self.polls_done = 0

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield HealthTiles()
        yield Static("checking…", id="health-status", markup=False)
        yield DataTable(id="health-checks", cursor_type="row", zebra_stripes=True)
        yield HealthPlots()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self.start_polling()

    def poll_interval(self) -> float:
        return self.goapp.settings.health.screen_interval

    async def poll(self) -> None:
        health = self.goapp.service.health
        report = await health.check()
        recorded = await health.series(WINDOW_MIN)
        if recorded is not None:  # else the cluster is away: keep what was read before
            self._recorded = recorded
        self._remember(report)
        self.report = report
        self.polls_done += 1
        self._show(report)

    def action_refresh_now(self) -> None:
        self.poll_soon()

    def _remember(self, report: HealthReport) -> None:
        cutoff = report.taken_at - timedelta(minutes=WINDOW_MIN)
        for name in GRAPHED:
            check = report.check(name)
            kept = [p for p in self._live[name] if p[0] >= cutoff]
            if check is not None and check.value is not None:
                kept.append((report.taken_at, check.value))
            self._live[name] = kept

    def graph_points(self) -> Points:
        """What the graphs show: the recorded samples and this screen's own checks."""
        return {
            name: sorted([*self._recorded.get(name, []), *self._live[name]]) for name in GRAPHED
        }

    def _show(self, report: HealthReport) -> None:
        self.query_one(HealthTiles).show(report)
        bad = sum(1 for c in report.checks if c.state.value != "OK")
        self.query_one("#health-status", Static).update(
            f"health {report.state.value}: {bad} of {len(report.checks)} checks not OK · "
            f"checked {report.taken_at:%H:%M:%S} UTC in {report.duration_ms:.0f} ms"
        )
        table: DataTable[str] = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for check in report.checks:
            table.add_row(
                check.name,
                check.state.value,
                check.shown,
                check.threshold or "-",
                _since(check.since, report.taken_at),
                check.detail,
                key=check.name,
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
        self.query_one(HealthPlots).show(self.graph_points(), report.taken_at)


def _since(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "-"
    age = (now - since).total_seconds()
    ago = f"{age / 60:.0f} min" if age >= 60 else f"{age:.0f} s"
    return f"{since:%H:%M} ({ago})"
