"""The Backups screen, a tenant's backup history and the detail view's last backup, driven
through Pilot against real backups of real tenants (both PostgreSQL versions).

Every wait polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
Staleness is judged against the app's clock, which the tests move forward.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from helpers import AuditGate, detail_screen, fast, tenants_screen, wait_for
from test_ui import SIZE, Notes, table_column
from textual.pilot import Pilot
from textual.widgets import Log, Static
from textual_plotext import PlotextPlot

from console.config import Settings
from console.core.backups.catalog import BackupKind
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.screens.backup_history import BackupHistoryScreen
from console.ui.screens.backups import BackupsScreen, BackupTable
from console.ui.screens.help import HelpScreen
from console.ui.tracker import OpState


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


async def backed_up(service: ConsoleService, key: str, kind: BackupKind | None = None) -> None:
    report = await service.backups.run([key], kind)
    assert not report.failures, report.failures


async def test_states_in_words_history_and_detail(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    """NEVER, OK, NEVER+FAILED and (the clock moved past the schedule and its grace) STALE,
    in words; Enter opens the history with its chart; the detail view shows the last backup."""
    for key in ("acme", "beta", "gamma"):
        await ui_service.provision(key)
    await backed_up(ui_service, "beta", BackupKind.FULL)
    await backed_up(ui_service, "beta")  # an incremental on it
    await su.execute("DROP SCHEMA tenant_gamma CASCADE")  # its backup fails
    report = await ui_service.backups.run(["gamma"])
    assert [o.key for o in report.failures] == ["gamma"]
    clock = Clock()
    app = GoConsoleApp(ui_service, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await backups_screen(pilot)
        assert screen.shown_keys() == ["acme", "beta", "gamma"]
        assert [screen.state_of(k) for k in screen.shown_keys()] == ["NEVER", "OK", "NEVER+FAILED"]
        table = screen.query_one(BackupTable)
        assert str(table.get_cell("beta", "chain")) == "1"
        focus = screen.query_one("#backup-focus", Static)
        assert str(focus.render()) == "acme: never backed up"
        await pilot.press("down", "down")
        await wait_for(
            pilot,
            lambda: str(focus.render()).startswith("gamma: never backed up · full failed"),
            "why gamma failed",
        )

        # daily fulls + 2 h of grace: 27 hours later beta's full is STALE
        clock.ahead = timedelta(hours=27)
        await refreshed(pilot, screen, "beta", "STALE")
        await pilot.press("up")
        await wait_for(
            pilot,
            lambda: str(focus.render()).startswith("beta: newest full 27.0 h old; limit 26.0 h"),
            "why beta is STALE",
        )

        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, BackupHistoryScreen) and app.screen.loaded,
            "beta's history",
        )
        shown = app.screen
        assert isinstance(shown, BackupHistoryScreen)
        assert [r.kind for r in shown.records] == [BackupKind.INCREMENTAL, BackupKind.FULL]
        chart = shown.chart()
        assert {kind: len(xs) for kind, (xs, _) in chart.series.items()} == {
            BackupKind.FULL: 1,
            BackupKind.INCREMENTAL: 1,
        }
        assert (chart.time_unit, chart.size_unit) == ("hours", "kB")  # 27 hours ago
        drawn = shown.query_one(PlotextPlot).plt.build()
        assert "beta: stored size (kB)" in drawn and "hours ago" in drawn
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on the backups screen")

        app.open_tenant("beta")
        detail = await detail_screen(pilot, "beta")
        text = str(detail.query_one("#summary", Static).render())
        assert "backup    incremental 1d ago" in text and "checked no" in text, text


async def test_run_from_the_screen_shows_progress(
    ui_service: ConsoleService, gate: AuditGate
) -> None:
    """f backs up the tenant under the cursor; I runs incrementals of every tenant (a full
    where there is none) with its progress line and events while it runs; one run at a time."""
    await ui_service.provision("acme")
    await ui_service.provision("beta")
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        screen = await backups_screen(pilot)
        assert screen.focused_tenant() == "acme"
        await pilot.press("f")
        await wait_for(pilot, lambda: screen.job and not screen.running(), "the full to end")
        assert screen.job is not None and screen.job.state is OpState.SUCCEEDED
        line = screen.query_one("#backup-progress", Static)
        assert str(line.render()).startswith("✓ backup full acme: 1 backed up"), line.render()
        await wait_for(pilot, lambda: screen.state_of("acme") == "OK", "acme OK")
        assert screen.state_of("beta") == "NEVER"

        await gate.close("backup.backup")  # holds each backup before its step is audited
        await pilot.press("I")
        await wait_for(pilot, lambda: screen.running(), "the run to start")
        await gate.wait_for_waiter()
        await wait_for(
            pilot,
            lambda: str(line.render()).startswith("… backup incremental all tenants: 0/2 tenants"),
            "the progress line",
        )
        assert screen.query_one("#backup-log", Log).display
        await pilot.press("f")
        await wait_for(pilot, lambda: notes.any("still running", "one run at a time"), "refusal")
        await gate.open()
        await wait_for(pilot, lambda: not screen.running(), "the run to end")
        assert str(line.render()).startswith("✓ backup incremental all tenants: 2 backed up")
        log = "\n".join(screen.query_one("#backup-log", Log).lines)
        assert "acme backup: incremental backup" in log, log
        assert "beta backup: full backup: " in log, log  # no chain yet: why a full
        await wait_for(pilot, lambda: screen.state_of("beta") == "OK", "beta OK")
        assert str(screen.query_one(BackupTable).get_cell("acme", "chain")) == "1"
    kinds = [r.kind for r in await ui_service.backups.history("acme")]
    assert kinds == [BackupKind.INCREMENTAL, BackupKind.FULL]


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


async def test_keys_have_ids_in_help_and_palette_entries(ui_service: ConsoleService) -> None:
    """? lists the backup keys with their binding ids; the palette offers the runs and
    verifications of the tenant under the cursor and of every tenant, and its history."""
    await ui_service.provision("acme")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await backups_screen(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        ids = set(table_column(app.screen, "DataTable", 2))
        assert {
            "backups.full",
            "backups.incremental",
            "backups.verify",
            "backups.restore_test",
            "backups.full_all",
            "backups.incremental_all",
            "backups.verify_all",
            "backups.restore_test_all",
            "backups.drill",
            "backups.drill_sample",
            "backups.refresh",
        } <= ids
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on the backups screen")
        labels = [label for label, _, _ in screen.palette_commands()]
        assert labels[0] == "Backup history of acme"
        assert "Run backup full of acme" in labels
        assert "Run verify --restore-test of all tenants" in labels
        assert "Run drill of a sample of tenants" in labels
        assert len(labels) == 11


async def test_verify_from_the_screen_records_the_level(ui_service: ConsoleService) -> None:
    """v verifies the tenant under the cursor at the checksum level, r with a restore test;
    the Checked column follows (a checksum pass is not called verified)."""
    await ui_service.provision("acme")
    await backed_up(ui_service, "acme", BackupKind.FULL)
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await backups_screen(pilot)
        table = screen.query_one(BackupTable)
        line = screen.query_one("#backup-progress", Static)
        assert str(table.get_cell("acme", "verified")) == "no"
        for key, level, shown in (
            ("v", "checksum check", "checksum"),
            ("r", "restore test", "✓ restore"),
        ):
            job = screen.job
            await pilot.press(key)
            await wait_for(
                pilot,
                lambda job=job: screen.job is not job and not screen.running(),
                f"{key} to end",
            )
            assert str(line.render()).startswith("✓ verify"), line.render()
            assert f"1 passed the {level}, 0 failed" in str(line.render()), line.render()
            await wait_for(
                pilot, lambda shown=shown: str(table.get_cell("acme", "verified")) == shown, shown
            )
