"""Areas that are not built yet say so plainly."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.widgets import Footer, Static

from console.ui.screens.base import ConsoleScreen


class NotBuiltScreen(ConsoleScreen):
    """An area of the console that a later issue builds."""

    def __init__(self, area: str, issue: int, meanwhile: str) -> None:
        super().__init__(id=f"area-{area}")
        self._area = area
        self._issue = issue
        self._meanwhile = meanwhile

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        with Center(), Vertical(classes="not-built"):
            yield Static(f"{self._area.capitalize()}", classes="dialog-title")
            yield Static(f"Not built yet: this screen arrives with issue #{self._issue}.")
            yield Static(f"Meanwhile: {self._meanwhile}")
        yield Footer()
