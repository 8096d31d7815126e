"""What the screens show is true: column widths follow late figures, and a lost database or
PgBouncer is shown in every header, marks the data stale, and its recovery is shown too.

The outage tests stop a server of their own (a dedicated cluster, a dedicated PgBouncer) so the
shared test cluster keeps serving the other tests. Time comes from an injected clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from helpers import APP_ROLE, fast, running_pgbouncer, tenants_screen, wait_for
from rich.text import Text
from test_ui import (
    SIZE,
    SIZE_CELL,
    Notes,
    insert_registry,
    table_column,
)
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.config import PgBouncerSettings, Settings
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import LocalCluster, throwaway_cluster
from console.ui.app import GoConsoleApp
from console.ui.connection import ConnectionState, Link
from console.ui.polling import backoff
from console.ui.screens.audit import AuditScreen
from console.ui.widgets.header import ConsoleHeader

OWN_CLUSTER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class FakeClock:
    """A clock the test sets by hand."""

    def __init__(self, hh: int, mm: int, ss: int) -> None:
        self.now = datetime(2026, 12, 1, hh, mm, ss, tzinfo=UTC)

    def set(self, hh: int, mm: int, ss: int) -> None:
        self.now = self.now.replace(hour=hh, minute=mm, second=ss)

    def __call__(self) -> datetime:
        return self.now


STALE_LINE = re.compile(
    r"✗ stale — data from 00:31:0[02]Z \(database unreachable since 00:31:02Z, retrying\)"
    r" · 1–2 of 2"
)


def banner(pilot: Pilot[object]) -> str:
    """The header banner of the current screen (empty while every link is up)."""
    return pilot.app.screen.query_one(ConsoleHeader).banner_text()


def status_line(pilot: Pilot[object]) -> str:
    return str(pilot.app.screen.query_one("#tenant-status", Static).render())


# -- item 5: column widths follow the slow figures ---------------------------------------------


async def test_size_and_revision_columns_widen_when_the_slow_figures_arrive(
    make_service: object, settings: Settings
) -> None:
    """The first paint has no sizes or revisions (a dash); the refresh that brings them must
    widen those columns, not leave ``848.`` and ``0005_ord`` until a filter rebuilds the
    table."""
    svc: ConsoleService = await make_service(settings=fast(settings))  # type: ignore[operator]
    await svc.init()
    await svc.provision("acme_outdoors", "Acme Outdoors")
    app = GoConsoleApp(svc)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        await wait_for(
            pilot,
            lambda: SIZE_CELL.fullmatch(table_column(screen, "#tenant-table", 4)[0]),
            "the schema size to arrive",
        )
        await pilot.pause()
        table: DataTable[Text] = screen.query_one("#tenant-table", DataTable)
        for index, key in ((4, "size"), (9, "revision")):
            widest = max(len(cell) for cell in table_column(screen, "#tenant-table", index))
            column = next(c for c in table.columns.values() if c.key.value == key)
            assert column.content_width >= widest, (key, column.content_width, widest)


# -- item 7: a lost database ----------------------------------------------------------------------


@pytest.fixture
def own_cluster(pg_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """A cluster of this test's own (same binaries as the parametrised one), to stop and
    start."""
    with throwaway_cluster(pg_cluster.binaries, OWN_CLUSTER_SETTINGS, "goconsole-link-") as (
        cluster,
        _,
    ):
        yield cluster


async def test_a_lost_database_is_shown_in_the_header_and_as_stale_data_until_it_is_back(
    own_cluster: LocalCluster, settings: Settings
) -> None:
    clock = FakeClock(0, 31, 0)
    async with ConsoleService(fast(settings), dsn=own_cluster.dsn()) as svc:
        await svc.init()
        su = await asyncpg.connect(own_cluster.dsn())
        try:
            await insert_registry(su, [("acme", "Acme", "ACTIVE"), ("bolt", "Bolt", "ACTIVE")])
        finally:
            await su.close()
        notes = Notes()
        app = GoConsoleApp(svc, clock=clock)
        async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
            screen = await tenants_screen(pilot)
            assert screen.shown_keys() == ["acme", "bolt"]
            assert banner(pilot) == ""
            assert not status_line(pilot).startswith("✗")

            # -- the server stops: the header says so, the table is marked stale --
            clock.set(0, 31, 2)
            await asyncio.to_thread(own_cluster.stop)
            lost = "✗ DISCONNECTED from the database since 00:31:02Z, retrying every 0.3 s"
            await wait_for(pilot, lambda: banner(pilot) == lost, "the header to show the loss")
            await wait_for(
                pilot,
                # the last good refresh ran at 00:31:00 or, racing the stop, at 00:31:02
                lambda: STALE_LINE.match(status_line(pilot)),
                f"the stale mark on the status line (it says {status_line(pilot)!r})",
            )
            assert screen.query_one("#tenant-table", DataTable).has_class("stale")
            assert screen.shown_keys() == ["acme", "bolt"]  # the last data stays, marked
            assert notes.any("Lost the database")

            # -- Ctrl+R says it cannot refresh, and why --
            await pilot.press("ctrl+r")
            await wait_for(
                pilot,
                lambda: notes.any(
                    "cannot refresh: the database is unreachable since 00:31:02Z",
                    "The data shown is from 00:31:0",
                ),
                "Ctrl+R to say why it cannot refresh",
            )

            # -- another screen shows it too, in its header, with its data dimmed --
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), "the audit screen")
            await wait_for(pilot, lambda: banner(pilot) == lost, "the audit screen's header")
            assert app.screen.has_class("db-lost")
            await pilot.press("ctrl+r")
            await wait_for(
                pilot,
                lambda: sum("cannot refresh" in text for text in notes.texts()) == 2,
                "Ctrl+R on the audit screen to say why it cannot refresh",
            )

            # -- the server is back: the banner goes, a notification says for how long --
            clock.set(0, 31, 44)
            await asyncio.to_thread(own_cluster.start)
            await wait_for(pilot, lambda: banner(pilot) == "", "the header to show recovery")
            assert not app.screen.has_class("db-lost")
            await wait_for(
                pilot,
                lambda: notes.any("Reconnected", "reconnected to the database after 42 s"),
                "the reconnection notification",
            )
            await pilot.press("t")
            await wait_for(
                pilot,
                lambda: (
                    not status_line(pilot).startswith("✗")
                    and not screen.query_one("#tenant-table", DataTable).has_class("stale")
                ),
                f"the stale mark to go (status line {status_line(pilot)!r})",
            )


# -- item 7: a lost PgBouncer ----------------------------------------------------------------------


@pytest.fixture
def own_pgbouncer(pg_cluster: LocalCluster) -> Iterator[LocalPgBouncer]:
    """A PgBouncer of this test's own in front of the test cluster, to stop and start."""
    with running_pgbouncer(
        pg_cluster.port, "goconsole-link-pgbouncer-", users=("postgres", APP_ROLE)
    ) as bouncer:
        yield bouncer


async def test_a_lost_pgbouncer_is_shown_in_the_header_until_it_is_back(
    make_service: object, settings: Settings, own_pgbouncer: LocalPgBouncer
) -> None:
    assert own_pgbouncer.include_file is not None
    bounced = dataclasses.replace(
        fast(settings),
        pgbouncer=PgBouncerSettings(
            admin_dsn=own_pgbouncer.admin_dsn,
            include_file=str(own_pgbouncer.include_file),
            command_timeout=5.0,
        ),
    )
    svc: ConsoleService = await make_service(settings=bounced)  # type: ignore[operator]
    await svc.init()
    clock = FakeClock(1, 0, 0)
    notes = Notes()
    app = GoConsoleApp(svc, clock=clock)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await tenants_screen(pilot)
        await pilot.pause()
        assert banner(pilot) == ""

        clock.set(1, 0, 5)
        await asyncio.to_thread(own_pgbouncer.stop)
        lost = "✗ PgBouncer LOST since 01:00:05Z, retrying every 0.3 s"
        await wait_for(pilot, lambda: banner(pilot) == lost, "the header to show PgBouncer lost")
        assert app.screen.has_class("pgbouncer-lost") and not app.screen.has_class("db-lost")
        assert notes.any("Lost PgBouncer")

        clock.set(1, 0, 17)
        await asyncio.to_thread(own_pgbouncer.start)
        await wait_for(pilot, lambda: banner(pilot) == "", "the header to show recovery")
        await wait_for(
            pilot,
            lambda: notes.any("reconnected to PgBouncer after 12 s"),
            "the reconnection notification",
        )


def test_connection_state_reports_each_change_once_and_names_both_links() -> None:
    clock = FakeClock(0, 0, 0)
    state = ConnectionState(clock)
    assert state.succeeded(Link.DATABASE) is None and state.banner(2) == ""
    lost = state.failed(Link.DATABASE, "connection\nrefused")
    assert lost is not None and lost.lost and lost.error == "connection refused"
    clock.set(0, 0, 3)
    assert state.failed(Link.DATABASE, "still refused") is None  # already lost: no new change
    assert state.failed(Link.PGBOUNCER, "timeout") is not None
    assert state.banner(2) == (
        "✗ DISCONNECTED from the database since 00:00:00Z, retrying every 2 s · "
        "✗ PgBouncer LOST since 00:00:03Z, retrying every 2 s"
    )
    clock.set(0, 1, 0)
    back = state.succeeded(Link.DATABASE)
    assert back is not None and not back.lost and back.outage_s == 60
    assert state.succeeded(Link.DATABASE) is None
    assert state.banner(2) == "✗ PgBouncer LOST since 00:00:03Z, retrying every 2 s"


# -- a view that fails again after it recovered is reported again ------------------------------


async def test_a_refresh_failure_after_a_recovery_is_reported_again(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    notes = Notes()
    app = GoConsoleApp(ui_service)

    def failures() -> int:
        return sum(text.startswith("Refresh failed: tenants:") for text in notes.texts())

    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        for outage in (1, 2):
            # The registry goes away while the database stays up: the view fails on its own.
            await su.execute("ALTER TABLE public.tenants RENAME TO tenants_away")
            await wait_for(pilot, lambda n=outage: failures() == n, f"failure {outage} reported")
            await su.execute("ALTER TABLE public.tenants_away RENAME TO tenants")
            await wait_for(
                pilot,
                lambda: not status_line(pilot).startswith("✗"),
                f"the refresh to work again (status line {status_line(pilot)!r})",
            )
        assert failures() == 2
        assert app.connection.lost_since(Link.DATABASE) is None  # the link never went down


def test_polls_back_off_while_the_source_fails() -> None:
    assert [backoff(2, n) for n in range(7)] == [2, 4, 8, 16, 30, 30, 30]
    assert backoff(45, 3) == 45  # never sooner than the configured interval
