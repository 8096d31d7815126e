"""The base of screens that show a source refreshed by polling.

One poll at a time: the next is scheduled when the last has finished (a refresh asked for
meanwhile follows it), later and later while the source fails. A failing source is reported
once per failure streak: the next failure after a good poll is reported again. A hidden screen
skips its polls (unless it polls hidden) and polls when shown again; every screen polls as soon
as the health probe sees its source come back.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.events import ScreenResume
from textual.timer import Timer

from console.ui.connection import Link, LinkChange
from console.ui.screens.base import ConsoleScreen

SOON_S = 0.01
MAX_BACKOFF_S = 30.0


def backoff(interval: float, failures: int) -> float:
    """Seconds to the next poll: ``interval`` when healthy, doubling per failure up to
    MAX_BACKOFF_S (never sooner than ``interval``)."""
    if failures == 0:
        return interval
    return min(max(MAX_BACKOFF_S, interval), interval * 2.0 ** min(failures, 10))


class PollingScreen(ConsoleScreen):
    """A screen refreshed by :meth:`poll`; subclasses call :meth:`start_polling` when mounted."""

    POLL_NAME: ClassVar[str] = ""  # names the view in "Refresh failed" notifications
    POLL_HIDDEN: ClassVar[bool] = False  # keep polling while another screen is shown
    SOURCE: ClassVar[Link] = Link.DATABASE  # polled as soon as this link comes back

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.loaded = False  # a poll has succeeded
        self.poll_failures = 0  # consecutive failed polls
        self._poll_timer: Timer | None = None
        self._polling = False
        self._poll_again = False
        self._reported = False  # this failure streak has been notified

    # -- what subclasses define ---------------------------------------------------------------

    async def poll(self) -> None:
        """Read the source and show it; raise when it cannot be read."""
        raise NotImplementedError

    def poll_interval(self) -> float:
        """Seconds between polls while the source answers."""
        return self.goapp.settings.ui.refresh_interval

    def next_poll_delay(self) -> float:
        """Seconds until the next poll, backing off while the source fails."""
        return backoff(self.poll_interval(), self.poll_failures)

    def poll_failed(self, exc: Exception) -> None:
        """A poll failed: notify once per failure streak (the app stays quiet while the header
        shows the database lost)."""
        if not self._reported:
            self._reported = self.goapp.report_refresh_error(self.poll_name(), exc)

    def poll_name(self) -> str:
        """What the notifications call this view."""
        return self.POLL_NAME

    def link_changed(self, change: LinkChange) -> None:
        """A link was lost or came back (the source's recovery is polled already)."""

    # -- the loop -----------------------------------------------------------------------------

    def start_polling(self) -> None:
        """Poll now, then on schedule; follow the links."""
        self.goapp.link_changes.subscribe(self, self._on_link_change)
        self.poll_soon()

    def poll_soon(self) -> None:
        """Poll now, or right after the poll in flight (never two at once)."""
        if self._polling:
            self._poll_again = True
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._polling = True
        self.run_worker(self._poll_once(), group=f"{self.id}-poll", exit_on_error=False)

    async def _poll_once(self) -> None:
        try:
            if self.is_current or self.POLL_HIDDEN or not self.loaded:
                await self.poll()
                self.loaded, self.poll_failures, self._reported = True, 0, False
        except Exception as exc:  # reported; the next poll retries
            self.poll_failures += 1
            self.poll_failed(exc)
        finally:
            self._polling = False
            delay = SOON_S if self._poll_again else self.next_poll_delay()
            self._poll_again = False
            self._poll_timer = self.set_timer(delay, self.poll_soon)

    def _on_link_change(self, change: LinkChange) -> None:
        self.link_changed(change)
        if change.link is self.SOURCE and not change.lost:
            self.poll_soon()

    @on(ScreenResume)
    def _resume_polling(self) -> None:
        """Shown again: a screen that skipped its polls while hidden catches up now."""
        if self.loaded and not self.POLL_HIDDEN:
            self.poll_soon()
