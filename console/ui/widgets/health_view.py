"""The Health screen's pieces: a row of state tiles (each state in words as well as colour)
and plotext graphs of the last hour's replication lag, connections and SELECT 1 latency."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static
from textual_plotext import PlotextPlot

from console.core.health.model import HealthReport, State

# tile id, label, the check group it sums up (None: every check)
TILES = (
    ("overall", "Overall", None),
    ("replication", "Replication", "replication"),
    ("connections", "Connections", "connections"),
    ("pools", "Pools", "pools"),
    ("backups", "Backups", "backups"),
    ("jobs", "Jobs", "jobs"),
)
# check name, plot title with the unit, scale from the recorded value
GRAPHS = (
    ("replication", "replication lag (MB)", 1 / (1024 * 1024)),
    ("connections", "connections", 1.0),
    ("connectivity", "SELECT 1 (ms)", 1.0),
)
X_LABEL = "minutes ago"
WINDOW_MIN = 60.0

Points = dict[str, list[tuple[datetime, float]]]


class HealthTiles(Horizontal):
    """One tile per area: its name and its worst state in words."""

    def __init__(self) -> None:
        super().__init__(id="health-tiles")

    def compose(self) -> ComposeResult:
        for tile, label, _ in TILES:
            yield Static(f"{label}\n…", id=f"tile-{tile}", classes="health-tile", markup=False)

    def show(self, report: HealthReport) -> None:
        """Each tile's state from ``report``."""
        for tile, label, group in TILES:
            state = report.state if group is None else report.group_state(group)
            widget = self.query_one(f"#tile-{tile}", Static)
            widget.update(f"{label}\n{state.value}")
            for each in State:
                widget.set_class(each is state, f"state-{each.value.lower()}")


class HealthPlots(Horizontal):
    """The graphed checks over the last hour, x in minutes before now."""

    def __init__(self) -> None:
        super().__init__(id="health-plots")

    def compose(self) -> ComposeResult:
        for name, _, _ in GRAPHS:
            yield PlotextPlot(id=f"plot-{name}", classes="health-plot")

    def show(self, points: Points, now: datetime) -> None:
        """Redraw every plot from ``points`` (check name -> [(time, recorded value)])."""
        for name, title, scale in GRAPHS:
            plot = self.query_one(f"#plot-{name}", PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.title(title)
            plt.xlabel(X_LABEL)
            xs = [-(now - at).total_seconds() / 60 for at, _ in points.get(name, [])]
            ys = [value * scale for _, value in points.get(name, [])]
            top = max(ys, default=0.0)
            plt.xlim(-WINDOW_MIN, 0)
            plt.ylim(0, top * 1.2 if top > 0 else 1)
            if xs:
                plt.plot(xs, ys, marker="braille")
            plot.refresh()
