"""One tenant's backup history: a chart of the stored size of its fulls and incrementals over
time (plotext), and every backup, newest first."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from console.core.backups.catalog import BackupKind, BackupRecord
from console.ui.backup_view import HISTORY_COLUMNS, SizeChart, history_cells, size_chart
from console.ui.polling import PollingScreen
from console.ui.widgets.keyed_table import KeyedTable

HISTORY_LIMIT = 500
MARKERS = {BackupKind.FULL: "braille", BackupKind.INCREMENTAL: "dot"}


class BackupHistoryScreen(PollingScreen):
    """The backups of one tenant, pushed over the Backups screen."""

    CSS_PATH = "backups.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="backup_history.back"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="backup_history.refresh"),
    ]

    def __init__(self, key: str) -> None:
        super().__init__(id=f"backup-history-{key}")
        self.key = key
        self.records: list[BackupRecord] = []

    def poll_name(self) -> str:
        return f"backups of {self.key}"

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        yield Static(f"Backups of {self.key}: loading…", id="history-title", markup=False)
        yield PlotextPlot(id="history-plot")
        table: KeyedTable[str] = KeyedTable(id="history-table", cursor_type="row")
        for key, label in HISTORY_COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history-table", KeyedTable).focus()
        self.start_polling()

    async def poll(self) -> None:
        """The tenant's backups (the newest HISTORY_LIMIT), as table and chart."""
        self.records = await self.goapp.service.backups.history(self.key, limit=HISTORY_LIMIT)
        table: KeyedTable[str] = self.query_one("#history-table", KeyedTable)
        table.show({str(r.id): history_cells(r) for r in self.records})
        shown = len(self.records)
        more = f" (the newest {HISTORY_LIMIT})" if shown == HISTORY_LIMIT else ""
        self.query_one("#history-title", Static).update(
            f"Backups of {self.key}: {shown} backup{'s' if shown != 1 else ''}{more}, "
            "newest first · stored size over time"
        )
        self._plot()

    def _plot(self) -> None:
        """Stored size per backup against time before now, fulls and incrementals apart."""
        plot = self.query_one("#history-plot", PlotextPlot)
        chart = self.chart()
        plt = plot.plt
        plt.clear_data()
        plt.title(f"{self.key}: stored size ({chart.size_unit})")
        plt.xlabel(f"{chart.time_unit} ago")
        for kind, marker in MARKERS.items():
            xs, ys = chart.series[kind]
            if xs:
                plt.plot(xs, ys, marker=marker, label=kind.value)
        plt.xlim(-chart.span * 1.05, 0)
        plt.ylim(0, chart.top * 1.2)
        plot.refresh()

    def chart(self) -> SizeChart:
        """What the chart shows (from the records last read)."""
        return size_chart(self.records, self.goapp.clock())

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh_now(self) -> None:
        if not self.cannot_refresh():
            self.poll_soon()
