"""The base of the console's full screens: typed access to the app that holds the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


class ConsoleScreen(Screen[None]):
    """A top-level screen of goconsole."""

    @property
    def goapp(self) -> GoConsoleApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]
