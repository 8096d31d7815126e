"""The header every screen shows: cluster, role, environment, read-only, scheduler, clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static


class ConsoleHeader(Horizontal):
    """One line: brand, cluster (role), ENVIRONMENT, READ-ONLY/rw, scheduler state, UTC clock."""

    def __init__(
        self,
        cluster: str,
        environment: str,
        read_only: bool,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(id="header")
        self._cluster = cluster
        self._environment = environment
        self._read_only = read_only
        self._clock = clock

    def compose(self) -> ComposeResult:
        yield Static("goconsole", id="brand")
        yield Static(self._cluster, id="cluster")
        env = Static(self._environment.upper(), id="environment")
        if self._environment.lower() in {"prod", "production"}:
            env.add_class("production")
        yield env
        badge = Static("READ-ONLY" if self._read_only else "rw", id="mode")
        badge.set_class(self._read_only, "read-only")
        yield badge
        yield Static("sched: off", id="scheduler")
        yield Static("", id="clock")

    def on_mount(self) -> None:
        self._tick()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        self.query_one("#clock", Static).update(self._clock().strftime("%H:%M:%SZ"))

    def set_role(self, role: str) -> None:
        """Show whether the cluster is the primary."""
        self.query_one("#cluster", Static).update(f"{self._cluster} ({role})")
