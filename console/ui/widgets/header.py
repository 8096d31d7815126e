"""The header every screen shows: cluster, role, environment, read-only, scheduler, clock, and a
banner while the database or PgBouncer is lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.signal import Signal
from textual.widgets import Static

from console.ui.connection import ConnectionState, Link, LinkChange


class ConsoleHeader(Vertical):
    """One line: brand, cluster (role), ENVIRONMENT, READ-ONLY/rw, scheduler state, UTC clock;
    below it, while a link is lost, a banner saying which and since when. It also marks its
    screen ``db-lost`` / ``pgbouncer-lost`` so the screen's data is shown stale."""

    def __init__(
        self,
        cluster: str,
        environment: str,
        read_only: bool,
        clock: Callable[[], datetime],
        connection: ConnectionState,
        changes: Signal[LinkChange],
        retry_s: float,
        scheduler: Callable[[], str] = lambda: "sched: off",
    ) -> None:
        super().__init__(id="header")
        self._cluster = cluster
        self._environment = environment
        self._read_only = read_only
        self._clock = clock
        self._connection = connection
        self._changes = changes
        self._retry_s = retry_s
        self._scheduler = scheduler  # the sched field's text, read from memory at each tick

    def compose(self) -> ComposeResult:
        with Horizontal(id="header-row"):
            yield Static("goconsole", id="brand")
            yield Static(self._cluster, id="cluster")
            env = Static(self._environment.upper(), id="environment")
            if self._environment.lower() in {"prod", "production"}:
                env.add_class("production")
            yield env
            badge = Static("READ-ONLY" if self._read_only else "rw", id="mode")
            badge.set_class(self._read_only, "read-only")
            yield badge
            yield Static(self._scheduler(), id="scheduler", markup=False)
            yield Static("", id="clock")
        yield Static("", id="link-banner")

    def on_mount(self) -> None:
        self._tick()
        self.set_interval(1.0, self._tick)
        self._changes.subscribe(self, self._show_links)
        self._show_links()

    def _tick(self) -> None:
        """The clock, and the scheduler field (from what the scheduler's own leader poll, one
        at a time, last learned: the header never queries)."""
        self.query_one("#clock", Static).update(self._clock().strftime("%H:%M:%SZ"))
        self.query_one("#scheduler", Static).update(self._scheduler())

    def _show_links(self, _change: LinkChange | None = None) -> None:
        banner = self._connection.banner(self._retry_s)
        widget = self.query_one("#link-banner", Static)
        widget.update(banner)
        widget.display = bool(banner)
        self.screen.set_class(self._connection.lost_since(Link.DATABASE) is not None, "db-lost")
        self.screen.set_class(
            self._connection.lost_since(Link.PGBOUNCER) is not None, "pgbouncer-lost"
        )

    def banner_text(self) -> str:
        """The banner as shown (empty while every link is up)."""
        widget = self.query_one("#link-banner", Static)
        return str(widget.render()) if widget.display else ""

    def set_role(self, role: str) -> None:
        """Show whether the cluster is the primary."""
        self.query_one("#cluster", Static).update(f"{self._cluster} ({role})")
