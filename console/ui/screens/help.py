"""``?``: the keys that apply on the screen you came from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    """A table of key, action and binding id (for remapping in ``[keys]``)."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(classes="dialog")
        self._rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield Label("Keys (remap by id in config.toml, table \\[keys])", classes="dialog-title")
            table: DataTable[str] = DataTable(cursor_type="row")
            table.add_columns("Key", "Action", "Binding id")
            table.add_rows(self._rows)
            yield table

    def action_close(self) -> None:
        self.dismiss(None)
