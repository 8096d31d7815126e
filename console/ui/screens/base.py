"""The base of the console's full screens (typed access to the app that holds the service), and
the row table whose Home and End go to the first and last row of the whole list."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


class ConsoleScreen(Screen[None]):
    """A top-level screen of goconsole."""

    @property
    def goapp(self) -> GoConsoleApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]


Cell = TypeVar("Cell")


class RowTable(DataTable[Cell]):
    """A row table whose Home/End go to the first/last row of the screen's whole list: the
    screen defines ``action_first_row`` and ``action_last_row`` (a paged list changes page)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "screen.first_row", "First row", show=False, id="table.first_row"),
        Binding("end", "screen.last_row", "Last row", show=False, id="table.last_row"),
    ]
