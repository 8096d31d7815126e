"""The Backups screen, a tenant's backup history and the detail view's last backup, driven
through Pilot against real backups of real tenants (both PostgreSQL versions).

Every wait polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
Staleness is judged against the app's clock, which the tests move forward.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import detail_screen, fast, tenants_screen, wait_for
from test_ui import SIZE, Notes
from textual.pilot import Pilot
from textual.widgets import Static
from textual_plotext import PlotextPlot

from console.config import Settings
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.screens.backup_history import BackupHistoryScreen
from console.ui.screens.backups import BackupsScreen


class Clock:
    """The app's clock: the real time, moved forward by ``ahead``."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def backups_screen(pilot: Pilot[Any]) -> BackupsScreen:
    """Switch to the Backups area (b) and wait for its first load."""
    app = pilot.app
    await tenants_screen(pilot)
    await pilot.press("b")

    def ready() -> BackupsScreen | None:
        screen = app.screen
        return screen if isinstance(screen, BackupsScreen) and screen.loaded else None

    found = await wait_for(pilot, ready, "the backups screen to load")
    assert isinstance(found, BackupsScreen)
    await pilot.pause()
    return found


async def refreshed(pilot: Pilot[Any], screen: BackupsScreen, key: str, state: str) -> None:
    """Refresh (Ctrl+R) until ``key``'s state cell reads ``state``."""
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.state_of(key) == state, f"{key} shown {state}")


async def test_states_in_words_history_and_detail(ui_service: ConsoleService) -> None:
    """NEVER, OK and (the clock moved past the schedule and its grace) STALE, in words; Enter
    opens the history with its chart; the detail view shows the last backup."""
    await ui_service.provision("acme")
    await ui_service.provision("beta")
    await ui_service.deactivate("beta", timeout=1)  # takes beta's full
    clock = Clock()
    app = GoConsoleApp(ui_service, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await backups_screen(pilot)
        assert screen.shown_keys() == ["acme", "beta"]
        assert screen.state_of("acme") == "NEVER"
        assert screen.state_of("beta") == "OK"
        focus = screen.query_one("#backup-focus", Static)
        assert str(focus.render()) == "acme: never backed up"

        # daily fulls + 2 h of grace: 27 hours later beta's full is STALE
        clock.ahead = timedelta(hours=27)
        await refreshed(pilot, screen, "beta", "STALE")
        await pilot.press("down")
        await wait_for(
            pilot,
            lambda: str(focus.render()).startswith("beta: newest full 27.0 h old; limit 26.0 h"),
            "why",
        )

        await pilot.press("enter")
        history = await wait_for(
            pilot,
            lambda: isinstance(app.screen, BackupHistoryScreen) and app.screen.loaded,
            "beta's history",
        )
        assert history
        shown = app.screen
        assert isinstance(shown, BackupHistoryScreen)
        assert len(shown.records) == 1
        chart = shown.chart()
        assert {kind.value: len(xs) for kind, (xs, _) in chart.series.items()} == {
            "full": 1,
            "incremental": 0,
        }
        assert (chart.time_unit, chart.size_unit) == ("hours", "kB")
        drawn = shown.query_one(PlotextPlot).plt.build()
        assert "beta: stored size (kB)" in drawn and "hours ago" in drawn
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on the backups screen")

        app.open_tenant("beta")
        detail = await detail_screen(pilot, "beta")
        text = str(detail.query_one("#summary", Static).render())
        assert "backup    full 1d ago" in text, text


async def test_read_only_refuses_runs(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
) -> None:
    await ui_service.provision("acme")
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await backups_screen(pilot)
        assert screen.shown_keys() == ["acme"]
        await pilot.press("f")
        await wait_for(pilot, lambda: notes.any("backup refused", "read-only"), "a refusal")
        screen.request("verify", None)
        await wait_for(pilot, lambda: notes.any("verify refused", "read-only"), "a refusal")
        assert screen.job is None
        assert await read_only.backups.history("acme") == []
