"""The base of the console's full screens: typed access to the app that holds the service."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual.screen import Screen

from console.ui.connection import Link, clock_text

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


class ConsoleScreen(Screen[None]):
    """A top-level screen of goconsole."""

    @property
    def goapp(self) -> GoConsoleApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def cannot_refresh(self, updated: datetime | None = None) -> bool:
        """While the database is lost, say that Ctrl+R cannot refresh, why, and how old the
        data on screen is (``updated``), ask for a health probe now, and return True."""
        connection = self.goapp.connection
        lost = connection.lost_since(Link.DATABASE)
        if lost is None:
            return False
        age = f" The data shown is from {clock_text(updated)}." if updated else ""
        self.notify(
            f"cannot refresh: the database is unreachable since {clock_text(lost)} "
            f"({connection.error(Link.DATABASE)}); retrying every "
            f"{self.goapp.health.interval:g} s.{age}",
            title="Refresh",
            severity="warning",
            markup=False,
        )
        self.goapp.health.probe_soon()
        return True
