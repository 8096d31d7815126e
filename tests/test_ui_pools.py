"""The Pools screen driven through Pilot against a real PgBouncer in front of a real PostgreSQL
(both versions).

Every wait polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import APP_ROLE, tenants_screen, wait_for
from test_ui import (
    SIZE,
    Notes,
    bound_actions,
    footer_labels,
    type_text,
)
from textual.app import App, ComposeResult
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from console.config import Settings, UiSettings
from console.core.pools.monitor import PoolSnapshot, PoolView
from console.core.pools.rates import PoolRates
from console.core.pools.rows import Limits, PoolRow
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import free_port
from console.ui.app import GoConsoleApp
from console.ui.pool_history import PoolHistory, capacity, totals
from console.ui.screens.help import HelpScreen
from console.ui.screens.pool_forms import PoolSizeScreen
from console.ui.screens.pools import PoolsScreen
from console.ui.screens.prompt import ConfirmDrainScreen, ConfirmKeyScreen
from console.ui.screens.tenant_detail import TenantDetailScreen
from console.ui.screens.tenants import TenantsScreen
from console.ui.widgets.keyed_table import KeyedTable
from console.ui.widgets.pool_gauge import (
    COLUMNS,
    CellStyles,
    PoolTable,
    gauge,
    pool_cells,
    state_text,
)

POLL_S = 0.25
STATE = [key for key, _ in COLUMNS].index("state")
SIZE_COLUMN = [key for key, _ in COLUMNS].index("size")
GAUGE = [key for key, _ in COLUMNS].index("gauge")


def fast_pools(settings: Settings, **changes: object) -> Settings:
    """``settings`` polling PgBouncer every POLL_S seconds (tests wait for polls)."""
    return dataclasses.replace(
        settings,
        pgbouncer=dataclasses.replace(settings.pgbouncer, poll_interval=POLL_S, **changes),
        ui=UiSettings(refresh_interval=0.3),
    )


@pytest.fixture
async def pool_service(
    make_service: Callable[..., Awaitable[ConsoleService]], bouncer_settings: Settings
) -> ConsoleService:
    """An initialized service managing the module's PgBouncer, polled every POLL_S seconds."""
    svc = await make_service(settings=fast_pools(bouncer_settings))
    await svc.init()
    return svc


@pytest.fixture
async def clients(pgbouncer: LocalPgBouncer) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    """Opens application connections through PgBouncer to a tenant's alias; closes them."""
    opened: list[asyncpg.Connection] = []

    async def connect(key: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            pgbouncer.dsn(f"tenant_{key}", APP_ROLE), statement_cache_size=0
        )
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.terminate()


async def pools_screen(pilot: Pilot[object], *aliases: str) -> PoolsScreen:
    """Press p and wait until the pools table shows ``aliases`` (with rates: two polls)."""
    app = pilot.app
    await pilot.press("p")

    def ready() -> PoolsScreen | None:
        screen = app.screen
        if not isinstance(screen, PoolsScreen) or screen.polls < 2:
            return None
        return screen if set(aliases) <= set(screen.shown_aliases()) else None

    found = await wait_for(pilot, ready, f"the pools table to show {', '.join(aliases)}")
    assert isinstance(found, PoolsScreen)
    return found


def row(screen: PoolsScreen, alias: str) -> list[str]:
    """The cells of one pool's row as plain text."""
    return [str(cell) for cell in screen.query_one(PoolTable).get_row(alias)]


def status_line(screen: PoolsScreen) -> str:
    return str(screen.query_one("#pool-status", Static).render())


def palette_options(app: GoConsoleApp) -> list[str]:
    """The prompts the open command palette lists."""
    found = app.screen.query(CommandList)
    if not found:
        return []
    options = found.first()
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def pool_of(service: ConsoleService, alias: str) -> PoolView:
    snapshot = await service.pools.snapshot()
    return next(v for v in snapshot.pools if v.name == alias)


# -- the lifecycle dialogs list the pool steps ---------------------------------------------------


async def test_drain_dialogs_list_the_pgbouncer_steps(pool_service: ConsoleService) -> None:
    """With PgBouncer managed, deactivate and offboard say they disable and pause the pool
    (the steps the core runs, from its own list)."""
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await tenants_screen(pilot)
        app.open_tenant("acme")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, TenantDetailScreen) and app.screen.detail,
            "the detail view",
        )
        for key, action in (("d", "deactivate"), ("o", "offboard")):
            await pilot.press(key)
            dialog = await wait_for(
                pilot,
                lambda: app.screen if isinstance(app.screen, ConfirmDrainScreen) else None,
                f"the {action} dialog",
            )
            assert isinstance(dialog, ConfirmDrainScreen)
            steps = str(dialog.query_one("#confirm-steps-text", Static).render())
            assert steps.splitlines() == [
                f"{i}. {step}"
                for i, step in enumerate(pool_service.lifecycle.steps(action, "acme", 30, False), 1)
            ]
            assert "PgBouncer: disable tenant_acme (no new clients), then pause it" in steps
            assert "not configured" not in steps
            await pilot.press("escape")
            await wait_for(
                pilot, lambda: isinstance(app.screen, TenantDetailScreen), "the dialog to close"
            )


# -- gauges, sorting, the waiting alert ------------------------------------------------------------


async def test_waiting_pool_is_flagged_and_sorted_first(
    pool_service: ConsoleService, clients: Callable[[str], Awaitable[asyncpg.Connection]]
) -> None:
    for key in ("acme", "bolt", "cedar"):
        await pool_service.provision(key)
    await pool_service.pools.set_size("cedar", 1, 0)
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await pools_screen(pilot, "tenant_acme", "tenant_bolt", "tenant_cedar")
        assert row(screen, "tenant_cedar")[SIZE_COLUMN] == "1+0"
        assert row(screen, "tenant_acme")[STATE] == "✓ ok"
        assert "max_client_conn" in str(screen.query_one("#pool-summary", Static).render())

        # One client holds cedar's only server connection in a transaction; a second waits.
        holder = await clients("cedar")
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1")
        waiter = await clients("cedar")
        queued = asyncio.ensure_future(waiter.fetchval("SELECT 2"))
        try:
            await wait_for(
                pilot,
                lambda: "⚠ WAITING" in row(screen, "tenant_cedar")[STATE],
                "the WAITING word on cedar's row",
            )
            assert screen.shown_aliases()[0] == "tenant_cedar"
            gauge = row(screen, "tenant_cedar")[GAUGE]
            assert gauge.startswith("█") and "+1 wait" in gauge
            assert "WAITING" in str(screen.query_one("#pool-summary", Static).render())
            assert screen.history is not None
            await wait_for(
                pilot,
                lambda: any(s.waiting for s in screen.history.samples),  # type: ignore[union-attr]
                "a sample with waiting clients in the history",
            )
            assert not queued.done()
        finally:
            await transaction.rollback()
        assert await queued == 2
        await wait_for(
            pilot,
            lambda: "WAITING" not in row(screen, "tenant_cedar")[STATE],
            "cedar's WAITING alert to clear",
        )


# -- resize ---------------------------------------------------------------------------------------


async def test_resize_from_the_screen(pool_service: ConsoleService) -> None:
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await pools_screen(pilot, "tenant_acme")
        assert row(screen, "tenant_acme")[SIZE_COLUMN] == "20+5"

        # A value out of range: the form names the range, refuses, and Escape changes nothing.
        await pilot.press("s")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, PoolSizeScreen) and app.screen, "the form"
        )
        assert isinstance(form, PoolSizeScreen)
        assert "pool size 1-50" in str(form.query_one("#pool-size-range", Static).render())
        await pilot.press("backspace", "backspace")
        await type_text(pilot, "99")
        error = str(form.query_one("#pool-size-error", Static).render())
        assert "99" in error and "pool size must be 1-50" in error
        assert form.query_one("#apply", Button).disabled
        await pilot.press("enter")
        assert app.screen is form
        await pilot.press("escape")
        assert app.screen is screen
        view = await pool_of(pool_service, "tenant_acme")
        assert (view.pool_size, view.reserve_pool) == (20, 5)

        # A good size and reserve: applied, and the table follows.
        await pilot.press("s")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, PoolSizeScreen) and app.screen, "the form"
        )
        assert isinstance(form, PoolSizeScreen)
        await pilot.press("backspace", "backspace")
        await type_text(pilot, "7")
        form.query_one("#pool-reserve", Input).focus()
        await pilot.press("end", "backspace")
        await type_text(pilot, "2")
        assert str(form.query_one("#pool-size-error", Static).render()) == ""
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: row(screen, "tenant_acme")[SIZE_COLUMN] == "7+2",
            "the new size on acme's row",
        )
    view = await pool_of(pool_service, "tenant_acme")
    assert (view.pool_size, view.reserve_pool) == (7, 2)


# -- pause/resume, disable/enable, reconnect, kill -------------------------------------------------


async def test_pool_actions_from_the_screen(
    pool_service: ConsoleService,
    clients: Callable[[str], Awaitable[asyncpg.Connection]],
    su: asyncpg.Connection,
) -> None:
    await pool_service.provision("acme")
    notes = Notes()
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await pools_screen(pilot, "tenant_acme")

        async def state_is(paused: bool, disabled: bool, word: str) -> bool:
            shown = word in row(screen, "tenant_acme")[STATE]
            return shown and await pool_service.pools.alias_state("tenant_acme") == (
                paused,
                disabled,
            )

        await pilot.press("z")
        await wait_for(pilot, lambda: state_is(True, False, "‖ PAUSED"), "acme paused")
        await pilot.press("z")
        await wait_for(pilot, lambda: state_is(False, False, "✓ ok"), "acme resumed")
        await pilot.press("d")
        await wait_for(pilot, lambda: state_is(False, True, "⊘ DISABLED"), "acme disabled")
        await pilot.press("d")
        await wait_for(pilot, lambda: state_is(False, False, "✓ ok"), "acme enabled")
        await pilot.press("r")
        await wait_for(pilot, lambda: notes.any("pool reconnect acme", "recycled"), "reconnect")

        # Kill needs the typed key: a wrong one does nothing, Escape cancels.
        client = await clients("acme")
        await client.fetchval("SELECT 1")
        await pilot.press("k")
        dialog = await wait_for(
            pilot, lambda: isinstance(app.screen, ConfirmKeyScreen) and app.screen, "the dialog"
        )
        assert isinstance(dialog, ConfirmKeyScreen)
        await type_text(pilot, "acm")
        await pilot.press("enter")
        assert app.screen is dialog
        await pilot.press("escape")
        await wait_for(pilot, lambda: notes.any("kill acme cancelled"), "the cancel notice")
        assert await client.fetchval("SELECT 2") == 2

        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKeyScreen), "the dialog")
        await type_text(pilot, "acme")
        await pilot.press("enter")
        await wait_for(pilot, lambda: notes.any("pool kill acme", "1 client(s) dropped"), "kill")
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await client.fetchval("SELECT 3")
        assert await pool_service.pools.alias_state("tenant_acme") == (False, False)
        op = app.tracker.latest("acme")
        assert op is not None and op.name == "pool kill" and op.state.value == "succeeded"
        assert not notes.any("Error")
    actions = await su.fetch(
        "SELECT a.action_type FROM public.tenant_audit_log a JOIN public.tenants t "
        "ON t.id = a.tenant_id WHERE t.key = 'acme' AND a.action_type LIKE 'pool.%' "
        "ORDER BY a.action_timestamp, a.id"
    )
    assert [r[0] for r in actions] == [
        "pool.pause",
        "pool.resume",
        "pool.disable",
        "pool.enable",
        "pool.reconnect",
        "pool.kill",
    ]


async def test_palette_offers_the_pool_actions(pool_service: ConsoleService) -> None:
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await pools_screen(pilot, "tenant_acme")
        labels = [label for label, _, _ in screen.palette_commands()]
        assert labels == [
            "Set the default pool size",
            "Resize pool of acme",
            "Pause pool of acme",
            "Disable pool of acme",
            "Reconnect pool of acme",
            "Kill every connection of acme's pool",
        ]
        await pilot.press("ctrl+p")
        await type_text(pilot, "Resize pool of acme")
        await wait_for(
            pilot,
            lambda: any(o.startswith("Resize pool of acme") for o in palette_options(app)),
            "the palette to list the resize command",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PoolSizeScreen), "the resize form")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the pools screen again")

        # Enter on a pool opens its tenant.
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, TenantDetailScreen) and app.screen.key == "acme",
            "acme's detail view",
        )


# -- PgBouncer down, not configured, read-only -----------------------------------------------------


async def test_pgbouncer_down_and_back(
    pool_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await pools_screen(pilot, "tenant_acme")
            table = screen.query_one(PoolTable)
            await asyncio.to_thread(pgbouncer.stop)
            await wait_for(
                pilot,
                lambda: (
                    "unreachable" in status_line(screen) and "retrying in" in status_line(screen)
                ),
                "the status line to say PgBouncer is unreachable",
            )
            assert "(stale)" in status_line(screen)
            assert table.has_class("stale")
            assert screen.shown_aliases() == ["tenant_acme"]  # the last data stays

            # Other areas keep working meanwhile.
            await pilot.press("t")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, TenantsScreen) and app.screen.loaded,
                "the tenants screen",
            )
            await pilot.press("p")
            await wait_for(pilot, lambda: app.screen is screen, "the pools screen again")

            await asyncio.to_thread(pgbouncer.start)
            await wait_for(
                pilot,
                lambda: status_line(screen).startswith("✓") and not table.has_class("stale"),
                "the screen to recover",
            )
            assert screen.shown_aliases() == ["tenant_acme"]
            assert row(screen, "tenant_acme")[STATE] == "✓ ok"
    finally:
        if not pgbouncer.running():
            await asyncio.to_thread(pgbouncer.start)


async def test_not_configured_explains_how(service: ConsoleService) -> None:
    app = GoConsoleApp(service)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, PoolsScreen) and app.screen, "the pools screen"
        )
        assert isinstance(screen, PoolsScreen)
        await pilot.pause()
        text = str(screen.query_one("#pool-not-configured", Static).render())
        assert "PgBouncer is not configured" in text
        assert "[pgbouncer]" in text and "admin_dsn" in text and "include_file" in text
        assert "%include" in text
        assert not screen.query(PoolTable)
        assert screen.polls == 0 and service.pools._monitor is None  # nothing polled
        assert "pool" not in bound_actions(app)
        assert screen.palette_commands() == []


async def test_admin_dsn_without_include_file_shows_pools_and_refuses_only_resize(
    pool_service: ConsoleService, bouncer_settings: Settings, pgbouncer: LocalPgBouncer
) -> None:
    """--pgbouncer-dsn alone: the pools are shown (as ``pool show`` shows them); resize, which
    rewrites the include file, says why it cannot run; actions over the admin console work."""
    await pool_service.provision("acme")
    settings = fast_pools(bouncer_settings, admin_dsn="", include_file="")
    service = ConsoleService(
        settings, dsn=pool_service.spec.conninfo, pgbouncer_dsn=pgbouncer.admin_dsn
    )
    notes = Notes()
    app = GoConsoleApp(service)
    try:
        async with service, app.run_test(size=SIZE, message_hook=notes) as pilot:
            screen = await pools_screen(pilot, "tenant_acme")
            assert not screen.query("#pool-not-configured")
            assert "no include_file: resize off" in status_line(screen)
            await pilot.press("s")
            await wait_for(
                pilot,
                lambda: notes.any("Resize unavailable", "no [pgbouncer] include_file"),
                "the reason resize cannot run",
            )
            assert not isinstance(app.screen, PoolSizeScreen)
            await pilot.press("r")
            await wait_for(pilot, lambda: notes.any("pool reconnect acme", "recycled"), "reconnect")
    finally:
        await service.close()


async def test_waiting_pool_without_a_server_says_why(
    make_service: Callable[..., Awaitable[ConsoleService]],
    bouncer_settings: Settings,
    pgbouncer: LocalPgBouncer,
) -> None:
    service = await make_service(
        settings=fast_pools(bouncer_settings, log_file=str(pgbouncer.log_file))
    )
    await service.init()
    await service.provision("acme")
    dead = free_port()
    Path(bouncer_settings.pgbouncer.include_file).write_text(
        f"[databases]\ntenant_acme = host=127.0.0.1 port={dead} dbname=x pool_size=2 "
        "reserve_pool=0\n"
    )
    await service.pools.admin.command("RELOAD")
    waiter = asyncio.ensure_future(
        asyncpg.connect(pgbouncer.dsn("tenant_acme", APP_ROLE), statement_cache_size=0)
    )
    app = GoConsoleApp(service)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await pools_screen(pilot, "tenant_acme")
            line = screen.query_one("#pool-no-server", Static)
            await wait_for(
                pilot,
                lambda: "server connect failed" in str(line.render()),
                "the reason the pool has no server",
            )
            assert line.display
            assert str(line.render()).startswith(
                f"✗ tenant_acme: clients wait, no server: server connect failed (127.0.0.1:{dead})"
            )
            assert "NO SERVER" in row(screen, "tenant_acme")[STATE]
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)


async def test_read_only_hides_and_refuses_pool_actions(
    make_service: Callable[..., Awaitable[ConsoleService]],
    pool_service: ConsoleService,
    bouncer_settings: Settings,
) -> None:
    await pool_service.provision("acme")
    read_only = await make_service(settings=fast_pools(bouncer_settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await pools_screen(pilot, "tenant_acme")
        assert "pool" not in bound_actions(app)
        await pilot.pause()
        assert not footer_labels(app) & {"Resize…", "Pause/Resume", "Kill…"}
        assert "Refresh" in footer_labels(app)
        await pilot.press("s", "k", "z")
        assert app.screen is screen
        assert screen.palette_commands() == []
        screen.request("kill", "acme")
        await wait_for(pilot, lambda: notes.any("pool kill refused", "read-only"), "a refusal")
        assert app.screen is screen
    assert await pool_service.pools.alias_state("tenant_acme") == (False, False)


async def test_bindings_are_listed_in_help_and_remappable(
    make_service: Callable[..., Awaitable[ConsoleService]],
    pool_service: ConsoleService,
    bouncer_settings: Settings,
) -> None:
    """? lists every pool binding with its id; [keys] remaps one; the default size form."""
    mapped = dataclasses.replace(fast_pools(bouncer_settings), keys={"pools.default": "f7"})
    svc = await make_service(settings=mapped)
    notes = Notes()
    app = GoConsoleApp(svc)
    try:
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            screen = await pools_screen(pilot)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
            ids = {binding_id for _, _, binding_id in app.screen._rows}  # type: ignore[attr-defined]
            assert {
                "pools.resize",
                "pools.pause",
                "pools.disable",
                "pools.reconnect",
                "pools.kill",
                "pools.default",
                "pools.refresh",
            } <= ids
            assert ("f7", "Default size…", "pools.default") in app.screen._rows  # type: ignore[attr-defined]
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, "the pools screen again")

            await pilot.press("f7")
            form = await wait_for(
                pilot, lambda: isinstance(app.screen, PoolSizeScreen) and app.screen, "the form"
            )
            assert isinstance(form, PoolSizeScreen)
            assert not form.query("#pool-reserve")  # the default has no reserve
            assert form.query_one("#pool-size", Input).value == "20"
            await pilot.press("backspace", "backspace")
            await type_text(pilot, "x")
            assert "not a whole number" in str(form.query_one("#pool-size-error", Static).render())
            await pilot.press("backspace")
            await type_text(pilot, "25")
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: notes.any("pool default size", "is 25"), "the new default"
            )
            snapshot = await svc.pools.snapshot()
            assert snapshot.limits.default_pool_size == 25
    finally:
        await pool_service.pools.set_default(20)


# -- the table, gauges and history without PgBouncer (run once) ----------------------------------


def view(
    n: int,
    *,
    size: int = 10,
    active: int = 0,
    idle: int = 0,
    waiting: int = 0,
    rates: PoolRates | None = None,
    **flags: bool,
) -> PoolView:
    pool = PoolRow(f"tenant_t{n:03d}", active, waiting, active, idle, 0, 0, 0, "transaction")
    return PoolView(
        f"tenant_t{n:03d}",
        size,
        2,
        0,
        pool,
        flags.get("paused", False),
        flags.get("disabled", False),
        rates,
        flags.get("rising", False),
    )


def busiest_first(views: list[PoolView]) -> list[PoolView]:
    """The monitor's order."""
    return sorted(views, key=lambda v: (-v.saturation, -v.pool.maxwait_us, v.name))


class CountingTable(PoolTable):
    """A PoolTable that counts the row operations."""

    def __init__(self) -> None:
        super().__init__(id="pool-table")
        self.calls = {"add_row": 0, "remove_row": 0, "clear": 0}

    def add_row(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["add_row"] += 1
        return super().add_row(*args, **kwargs)

    def remove_row(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["remove_row"] += 1
        return super().remove_row(*args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["clear"] += 1
        return super().clear(*args, **kwargs)


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CountingTable()


async def test_table_of_500_pools_is_updated_by_diff() -> None:
    styles = CellStyles()
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(CountingTable)
        views = [view(n) for n in range(500)]
        table.show({v.name: pool_cells(v, styles) for v in busiest_first(views)})
        await pilot.pause()
        assert table.row_count == 500 and table.calls["add_row"] == 500
        table.move_cursor(row=250)
        assert table.cursor_key() == "tenant_t250"

        # One pool starts waiting (sorts first), one goes, one appears, one gets busier.
        views[250] = view(250, active=10, waiting=3)
        views[10] = view(10, active=2, idle=1)
        views = [*views[:499], view(500)]
        table.calls = dict.fromkeys(table.calls, 0)
        table.show({v.name: pool_cells(v, styles) for v in busiest_first(views)})
        await pilot.pause()
        assert table.calls == {"add_row": 1, "remove_row": 1, "clear": 0}
        assert table.row_keys()[:2] == ["tenant_t250", "tenant_t010"]
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == table.row_keys()[:3]
        assert "tenant_t499" not in table.row_keys() and table.row_keys()[-1] == "tenant_t500"
        assert table.cursor_key() == "tenant_t250"  # the cursor followed its pool
        assert "⚠ WAITING" in str(table.get_row("tenant_t250")[2])
        assert str(table.get_row("tenant_t010")[1]).startswith("███")


class RunsApp(App[None]):
    def compose(self) -> ComposeResult:
        table: KeyedTable[str] = KeyedTable(id="runs", cursor_type="row")
        table.add_column("Started", key="started")
        table.add_column("Status", key="status")
        yield table


async def test_keyed_table_without_key_column_diffs_cells_and_refills_on_new_keys() -> None:
    app = RunsApp()
    async with app.run_test(size=SIZE) as pilot:
        table: KeyedTable[str] = app.query_one(KeyedTable)
        table.show({"r2": ("12:02", "running"), "r1": ("12:01", "done")})
        table.move_cursor(row=1)
        await pilot.pause()
        first = table.rows["r1"]

        table.show({"r2": ("12:02", "done"), "r1": ("12:01", "done")})
        assert table.get_row("r2") == ["12:02", "done"]
        assert table.rows["r1"] is first  # same rows: only the changed cell was updated

        table.show({"r3": ("12:03", "running"), "r2": ("12:02", "done"), "r1": ("12:01", "done")})
        assert table.row_keys() == ["r3", "r2", "r1"]  # newest first, as given
        assert table.cursor_key() == "r1"  # the cursor followed its row


def test_gauge_and_state_words() -> None:
    styles = CellStyles()
    assert str(gauge(view(1, size=4, active=1, idle=1), styles)) == "████▒▒▒▒········"
    assert str(gauge(view(1, size=4), styles)) == "·" * 16
    assert str(gauge(view(1, size=2, active=4, waiting=3), styles)) == "█" * 16 + " +3 wait"
    assert str(state_text(view(1), styles)) == "✓ ok"
    assert str(state_text(view(1, waiting=1, rising=True), styles)) == (
        "⚠ WAITING ↑ MAXWAIT RISING"
    )
    assert str(state_text(view(1, paused=True, disabled=True), styles)) == "‖ PAUSED ⊘ DISABLED"
    cells = [str(c) for c in pool_cells(view(1, size=4, active=2), styles)]
    assert cells[SIZE_COLUMN] == "4+2" and cells[-4:] == ["50%", "—", "—", "—"]


def snapshot_at(when: datetime, *views: PoolView) -> PoolSnapshot:
    return PoolSnapshot(
        when,
        1.0,
        "PgBouncer 1.18.0",
        Limits(1000, 50, 20, 5),
        tuple(views),
        0,
        sum(v.pool.cl_waiting for v in views),
        0,
        0,
        False,
    )


def test_history_is_a_bounded_ring_of_totals() -> None:
    assert capacity(10, 1.0) == 600 and capacity(10, 0.25) == 2400 and capacity(1, 120) == 2
    start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    rates = PoolRates(10.0, 20.0, 1.0, 2.0, 4.0)
    other = PoolRates(30.0, 30.0, 1.0, 2.0, 0.0)
    sample = totals(snapshot_at(start, view(1, waiting=2, rates=rates), view(2, rates=other)))
    assert (sample.waiting, sample.xact_per_s, sample.avg_wait_ms) == (2, 40.0, 1.0)
    assert totals(snapshot_at(start, view(1))).xact_per_s is None

    history = PoolHistory(1, 20.0)  # one minute at one poll per 20 s: 3 samples
    for n in range(5):
        history.add(snapshot_at(start + timedelta(seconds=20 * n), view(1, waiting=n)))
    assert len(history) == 3
    xs, ys = history.series("waiting")
    assert xs == [-40 / 60, -20 / 60, 0.0] and ys == [2.0, 3.0, 4.0]
    assert history.series("xact_per_s") == ([], [])  # no rates yet: no points

    # Sparser polls (PgBouncer was down): samples older than the window go too.
    history.add(snapshot_at(start + timedelta(minutes=10), view(1)))
    assert len(history) == 1
