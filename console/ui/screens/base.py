"""The base of the console's full screens (typed access to the app that holds the service), and
the row table whose Home and End go to the first and last row of the whole list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.core.tenants.registry import TenantStatus
from console.ui.connection import Link, clock_text
from console.ui.widgets.keyed_table import KeyedTable

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


# A command palette entry: label, what it runs, help text.
Command = tuple[str, Callable[[], object], str]


class ConsoleScreen(Screen[None]):
    """A top-level screen of goconsole; each says which tenant the operator is looking at and
    what it adds to the command palette."""

    def focused_tenant(self) -> str | None:
        """The tenant the operator is looking at here, if any."""
        return None

    def status_of(self, key: str) -> TenantStatus | None:
        """Tenant ``key``'s status as this screen last read it (None: not known here)."""
        return None

    def palette_commands(self) -> list[Command]:
        """This screen's own command palette entries."""
        return []

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


Cell = TypeVar("Cell")


class RowTable(KeyedTable[Cell]):
    """A keyed row table whose Home/End go to the first/last row of the screen's whole list:
    the screen defines ``action_first_row`` and ``action_last_row`` (a paged list changes
    page)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "screen.first_row", "First row", show=False, id="table.first_row"),
        Binding("end", "screen.last_row", "Last row", show=False, id="table.last_row"),
    ]
