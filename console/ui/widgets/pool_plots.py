"""Sparklines (plotext) of the pool totals over the last minutes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from console.ui.pool_history import PoolHistory

# field, title with the y axis unit (short: three plots share 80 columns)
SERIES = (
    ("waiting", "waiting clients"),
    ("xact_per_s", "transactions / s"),
    ("avg_wait_ms", "avg wait (ms)"),
)
X_LABEL = "minutes ago, all pools"


class PoolPlots(Horizontal):
    """Waiting clients, transactions per second and average wait, totals of all pools; each
    titled with its unit, the x axis in minutes before the newest sample."""

    def __init__(self) -> None:
        super().__init__(id="pool-plots")

    def compose(self) -> ComposeResult:
        for field, _ in SERIES:
            yield PlotextPlot(id=f"plot-{field}", classes="pool-plot")

    def plot_title(self, field: str) -> str:
        """The title of one plot: what it counts, in which unit."""
        return dict(SERIES)[field]

    def show(self, history: PoolHistory) -> None:
        """Redraw every plot from ``history`` (x: minutes before the newest sample)."""
        for field, _ in SERIES:
            plot = self.query_one(f"#plot-{field}", PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.title(self.plot_title(field))
            plt.xlabel(X_LABEL)
            xs, ys = history.series(field)
            top = max(ys, default=0.0)
            plt.xlim(-history.minutes, 0)
            plt.ylim(0, top * 1.2 if top > 0 else 1)
            if xs:
                plt.plot(xs, ys, marker="braille")
            plot.refresh()
