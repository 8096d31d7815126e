"""The console's links to PostgreSQL and PgBouncer: up, or lost since when, and for how long.

One :class:`ConnectionState` per app, fed by :class:`HealthProbe` (``SELECT 1`` on the service's
pool and ``SHOW VERSION`` on the PgBouncer admin connection, one probe at a time) and by the
screens' failed polls (which ask for a probe now). Every screen's header renders it; the clock
is injected, so tests never sleep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from textual.app import App
from textual.timer import Timer
from textual.worker import WorkType

from console.core.service import ConsoleService


class Link(StrEnum):
    """What the console talks to."""

    DATABASE = "database"
    PGBOUNCER = "PgBouncer"


@dataclass
class LinkState:
    """One link: when it was lost (None while up) and the last error seen."""

    lost_since: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class LinkChange:
    """A link was lost (``outage_s`` is None) or came back after ``outage_s`` seconds."""

    link: Link
    error: str
    outage_s: float | None = None

    @property
    def lost(self) -> bool:
        """Whether this change is a loss (else a recovery)."""
        return self.outage_s is None


class ConnectionState:
    """Up/lost state of each link, with the times the header and the screens show."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._links = {link: LinkState() for link in Link}

    def succeeded(self, link: Link) -> LinkChange | None:
        """Record an answer; a change when ``link`` was lost until now."""
        state = self._links[link]
        if state.lost_since is None:
            return None
        outage = (self._clock() - state.lost_since).total_seconds()
        state.lost_since = None
        return LinkChange(link, state.error, max(0.0, outage))

    def failed(self, link: Link, error: str) -> LinkChange | None:
        """Record a failure; a change when ``link`` was up until now."""
        state = self._links[link]
        state.error = " ".join(error.split())  # one line (driver messages hold newlines)
        if state.lost_since is not None:
            return None
        state.lost_since = self._clock()
        return LinkChange(link, state.error)

    def lost_since(self, link: Link) -> datetime | None:
        """When ``link`` was lost, or None while it is up."""
        return self._links[link].lost_since

    def error(self, link: Link) -> str:
        """The last error seen on ``link``."""
        return self._links[link].error

    def banner(self, retry_s: float) -> str:
        """What the header says while a link is lost; empty while all are up."""
        parts = []
        for link, state in self._links.items():
            if state.lost_since is not None:
                word = (
                    "DISCONNECTED from the database" if link is Link.DATABASE else "PgBouncer LOST"
                )
                parts.append(
                    f"✗ {word} since {clock_text(state.lost_since)}, retrying every {retry_s:g} s"
                )
        return " · ".join(parts)


def clock_text(moment: datetime) -> str:
    """``00:31:02Z``: the header clock's format."""
    return moment.strftime("%H:%M:%SZ")


class HealthProbe:
    """Probes the links every ``interval`` seconds, one probe at a time (a probe asked for
    while one runs follows it), and reports each change to ``changed``."""

    def __init__(
        self,
        app: App[Any],
        service: ConsoleService,
        state: ConnectionState,
        interval: float,
        changed: Callable[[LinkChange], None],
    ) -> None:
        self._app = app
        self._service = service
        self._state = state
        self.interval = interval
        self._changed = changed
        self._running = False
        self._again = False
        self._timer: Timer | None = None

    def start(self) -> None:
        """Probe now, then every ``interval``."""
        self.probe_soon()

    def probe_soon(self) -> None:
        """Probe now, or right after the probe in flight (never two at once)."""
        if not self._app.is_running:  # quitting: nothing may open a connection any more
            return
        if self._running:
            self._again = True
            return
        if self._timer is not None:
            self._timer.stop()
        self._running = True
        # the worker calls it when it starts: no coroutine is left unawaited by a quitting app
        probe: WorkType[None] = self._probe
        self._app.run_worker(probe, group="health-probe", exit_on_error=False)

    async def _probe(self) -> None:
        try:
            await self._check(Link.DATABASE, self._service.ping())
            if self._service.pgbouncer_watched:
                await self._check(Link.PGBOUNCER, self._service.ping_pgbouncer())
        finally:
            self._running = False
        # Not reached when cancelled: a quitting app (it cancels its workers without waiting)
        # must start no probe, which would open a connection after the service closed.
        if not self._app.is_running:
            return
        if self._again:
            self._again = False
            self.probe_soon()
        else:
            self._timer = self._app.set_timer(self.interval, self.probe_soon)

    async def _check(self, link: Link, answer: Awaitable[None]) -> None:
        try:
            await answer
        except Exception as exc:  # any failure to answer means the link is down
            change = self._state.failed(link, str(exc) or type(exc).__name__)
        else:
            change = self._state.succeeded(link)
        if change is not None:
            self._changed(change)
