"""Key routing, dialogs, read-only refusals and themes of the console, driven through Pilot
against a real PostgreSQL (and a real PgBouncer where pools matter), both versions.

Every wait polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from test_ui import (
    SIZE,
    Notes,
    detail_screen,
    fast,
    tenants_screen,
    wait_for,
)
from test_ui_pools import fast_pools, pool_of, pools_screen
from textual import events
from textual.widgets import Button, Static

from console.config import Settings, UiSettings
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.commands import ThemeCommands
from console.ui.screens.audit import AuditScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.migrations import MigrationsScreen
from console.ui.screens.pool_forms import PoolSizeScreen
from console.ui.themes import themes_dir


@pytest.fixture
async def ui_service(make_service: Callable[..., Awaitable[ConsoleService]], settings: Settings):
    """An initialized ConsoleService with a short refresh interval."""
    svc = await make_service(settings=fast(settings))
    await svc.init()
    return svc


@pytest.fixture
async def pool_service(
    make_service: Callable[..., Awaitable[ConsoleService]], bouncer_settings: Settings
) -> ConsoleService:
    """An initialized service managing the module's PgBouncer, polled often."""
    svc = await make_service(settings=fast_pools(bouncer_settings))
    await svc.init()
    return svc


async def pool_audit(su: asyncpg.Connection) -> list[str]:
    rows = await su.fetch(
        "SELECT action_type FROM public.tenant_audit_log WHERE action_type LIKE 'pool.%' "
        "ORDER BY action_timestamp, id"
    )
    return [r[0] for r in rows]


# -- area keys go where the footer says -----------------------------------------------------------


async def test_t_always_shows_the_tenants_list(ui_service: ConsoleService) -> None:
    await ui_service.provision("acme")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        tenants = await tenants_screen(pilot)

        # From the tenant's detail (pushed in the tenants area): t shows the list.
        await pilot.press("enter")
        await detail_screen(pilot, "acme")
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen is tenants, "t on the detail to show the list")

        # From another area, with the detail left open in the tenants area: the list again.
        await pilot.press("enter")
        await detail_screen(pilot, "acme")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), "the audit screen")
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen is tenants, "t from audit to show the list")
        assert len(app.screen_stack) == 1

        # Every area key shows its own area's screen, from wherever it is pressed.
        await pilot.press("enter")
        await detail_screen(pilot, "acme")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), "migrations")
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen is tenants, "t from migrations")


# -- keys typed during a screen change, and the resize dialog -------------------------------------


async def test_keys_typed_during_a_screen_change_do_not_act_on_the_new_screen(
    pool_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE) as pilot:
        pools = await pools_screen(pilot, "tenant_acme")  # it has data and a cursor row now
        await pilot.press("t")
        await tenants_screen(pilot)

        # Typed faster than the switch: all are queued before the first is handled. `s` and
        # Enter were typed for the tenants screen (status filter, open); on the pools screen
        # they would resize acme's pool.
        for key, char in (("p", "p"), ("s", "s"), ("enter", "\r")):
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: app.screen is pools, "p to show the pools screen")
        # A key typed once the pools screen is shown acts normally; the ones before did not.
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "? to open the help")
        assert not any(isinstance(s, PoolSizeScreen) for s in app.screen_stack)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is pools, "the pools screen again")
    view = await pool_of(pool_service, "tenant_acme")
    assert (view.pool_size, view.reserve_pool) == (20, 5)
    assert await pool_audit(su) == []


async def test_bare_enter_on_unchanged_size_dialogs_applies_nothing(
    pool_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await pool_service.provision("acme")
    app = GoConsoleApp(pool_service)
    async with app.run_test(size=SIZE) as pilot:
        pools = await pools_screen(pilot, "tenant_acme")
        for key in ("s", "D"):  # resize acme's pool; the default pool size
            await pilot.press(key)
            form = await wait_for(
                pilot, lambda: isinstance(app.screen, PoolSizeScreen) and app.screen, "the form"
            )
            assert isinstance(form, PoolSizeScreen)
            assert form.query_one("#apply", Button).disabled
            await pilot.press("enter")
            assert app.screen is form
            hint = str(form.query_one("#pool-size-error", Static).render())
            assert "unchanged" in hint
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is pools, "the pools screen again")
        snapshot = await pool_service.pools.snapshot()
        assert snapshot.limits.default_pool_size == 20
    view = await pool_of(pool_service, "tenant_acme")
    assert (view.pool_size, view.reserve_pool) == (20, 5)
    assert await pool_audit(su) == []


# -- read-only mode: hidden mutation keys say why nothing happens ---------------------------------


async def test_read_only_mutation_keys_are_refused_with_a_notification(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
) -> None:
    await ui_service.provision("acme")
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        tenants = await tenants_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: notes.any("provision refused", "read-only"), "n refused")
        assert app.screen is tenants

        await pilot.press("enter")
        detail = await detail_screen(pilot, "acme")
        for key, action in (("d", "deactivate"), ("o", "offboard"), ("r", "reactivate")):
            await pilot.press(key)
            await wait_for(
                pilot, lambda a=action: notes.any(f"{a} refused", "read-only"), f"{key} refused"
            )
        assert app.screen is detail
        assert app.tracker.latest("acme") is None

        # Keys that are no mutation stay silent; typing in the filter is typing.
        count = len(notes.seen)
        await pilot.press("t", "slash", "d", "n")
        assert len(notes.seen) == count

        await pilot.press("escape", "m", "r")
        await wait_for(pilot, lambda: notes.any("migrate refused", "read-only"), "r refused")


# -- themes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("builtins", [False, True])
async def test_only_our_themes_are_offered_unless_configured(
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    builtins: bool,
) -> None:
    ours = {"gocommerce-dark", "gocommerce-light", "high-contrast"}
    themed = dataclasses.replace(
        settings, ui=UiSettings(refresh_interval=0.3, theme="nord", builtin_themes=builtins)
    )
    svc = await make_service(settings=themed)
    await svc.init()
    notes = Notes()
    app = GoConsoleApp(svc, themes_folder=themes_dir())
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        offered = ThemeCommands(app.screen)._themes()
        if builtins:
            assert app.theme == "nord"
            assert set(offered[:3]) == ours and {"nord", "textual-dark"} <= set(offered[3:])
        else:
            assert app.theme == "gocommerce-dark"
            assert notes.any("'nord' is a built-in Textual theme", "ui.builtin_themes")
            assert set(offered) == ours == set(app.available_themes)


async def test_unknown_theme_falls_back_to_gocommerce_dark(
    make_service: Callable[..., Awaitable[ConsoleService]], settings: Settings, tmp_path: Path
) -> None:
    themed = dataclasses.replace(settings, ui=UiSettings(refresh_interval=0.3, theme="nope"))
    svc = await make_service(settings=themed)
    await svc.init()
    notes = Notes()
    app = GoConsoleApp(svc, themes_folder=themes_dir())
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        assert app.theme == "gocommerce-dark"
        assert notes.any("theme 'nope' is not available", "using gocommerce-dark")
