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
from helpers import detail_screen, fast, tenants_screen, wait_for
from test_ui import (
    SIZE,
    Notes,
    insert_registry,
    table_column,
    type_text,
)
from test_ui_pools import fast_pools, palette_options, pool_of, pools_screen
from textual import events
from textual.widgets import Button, DataTable, Input, Static
from textual.widgets._toast import Toast

from console.config import Settings, UiSettings
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.commands import ThemeCommands
from console.ui.screens.audit import AUDIT_LIMIT, AuditScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.migrations import MigrationsScreen
from console.ui.screens.pool_forms import PoolSizeScreen
from console.ui.screens.tenants import TenantsScreen
from console.ui.tenant_view import PAGE_SIZE
from console.ui.themes import themes_dir


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
            # The title wraps inside the dialog (the default size's is long), never cut.
            box = form.query_one(".dialog-box").content_region
            assert form.query_one(".dialog-title").region.right <= box.right
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
        await pilot.press("t")
        await wait_for(pilot, lambda: app.screen is tenants, "the tenants list")
        await pilot.pause()  # the screen change settles: keys typed before it are dropped
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), "the filter focused")
        await pilot.press("d", "n")
        assert len(notes.seen) == count

        await pilot.press("escape")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), "migrations")
        await pilot.press("r")
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
        # The palette's theme list (Ctrl+P → Theme) is that list, ours first.
        app.action_change_theme()
        await wait_for(pilot, lambda: len(palette_options(app)) == len(offered), "the themes")
        assert [option.split()[0] for option in palette_options(app)] == offered


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


# -- lists: status cycle, Home/End, the audit screen at 80x24, toasts ---------------------------


def status_line(screen: TenantsScreen) -> str:
    return str(screen.query_one("#tenant-status", Static).render())


async def test_status_key_skips_statuses_no_tenant_has(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await insert_registry(su, [("bolt", "Bolt", "INACTIVE"), ("cedar", "Cedar", "ARCHIVED")])
    await ui_service.provision("acme")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        seen = []
        for _ in range(4):
            await pilot.press("s")
            seen.append(status_line(screen).split(" · status ")[1].split(" · ")[0])
        assert seen == ["ACTIVE", "INACTIVE", "ARCHIVED", "all"]


async def test_home_and_end_go_to_the_ends_of_the_whole_list(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    count = 2 * PAGE_SIZE + 7
    keys = [f"shop_{i:04d}" for i in range(count)]
    await insert_registry(su, [(key, key, "ACTIVE") for key in keys])
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        await pilot.press("end")
        assert screen.cursor_key() == keys[-1]
        assert "page 3/3" in status_line(screen)
        await pilot.press("home")
        assert screen.cursor_key() == keys[0]
        assert "page 1/3" in status_line(screen)


async def test_audit_screen_fits_80_columns_filters_by_prefix_and_counts_right(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    for key in ("shop_a", "shop_b", "other"):
        await ui_service.provision(key)
    await su.execute(
        "INSERT INTO public.tenant_audit_log (action_type, actor, actor_host, actor_address) "
        "VALUES ('test.long', 'operations', 'bastion-eu-west-1.internal.example', "
        "'2001:db8:85a3::8a2e:370:7334')"
    )
    total = await su.fetchval("SELECT count(*) FROM public.tenant_audit_log")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await tenants_screen(pilot)
        await pilot.press("a")
        audit = await wait_for(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded and app.screen,
            "the audit screen",
        )
        assert isinstance(audit, AuditScreen)
        table = audit.query_one("#audit-table", DataTable)
        # Every column fits the 80-column table; the long actor and address are cut visibly.
        width = sum(c.get_render_width(table) for c in table.columns.values())
        assert width <= table.scrollable_content_region.width
        top = [str(cell) for cell in table.get_row_at(0)]
        assert top[2] == "test.long"
        assert top[3].startswith("operations@") and top[3].endswith("…")
        assert top[4].startswith("2001:") and top[4].endswith("…")

        # A wider terminal shows them whole.
        await pilot.resize_terminal(160, 48)
        await wait_for(
            pilot,
            lambda: str(table.get_row_at(0)[3]) == "operations@bastion-eu-west-1.internal.example",
            "the whole actor once the terminal is wider",
        )
        assert str(table.get_row_at(0)[4]) == "2001:db8:85a3::8a2e:370:7334"

        # Fewer entries than the limit: just the count.
        status = str(audit.query_one("#audit-status", Static).render())
        assert status.startswith(f"{total} entries · ") and "newest" not in status

        # End goes to the last (oldest) row, Home back to the first.
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("home")
        assert table.cursor_row == 0

        # A tenant key prefix filters to every tenant it starts.
        await pilot.press("slash")
        await type_text(pilot, "shop")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: set(table_column(audit, "#audit-table", 1)) == {"shop_a", "shop_b"},
            "the entries of shop_a and shop_b only",
        )

    # More entries than the limit: says the newest are shown and older ones exist.
    await su.execute(
        "INSERT INTO public.tenant_audit_log (action_type, actor, actor_host, actor_address) "
        "SELECT 'test.bulk', 'ops', 'h', 'local' FROM generate_series(1, $1)",
        AUDIT_LIMIT,
    )
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await tenants_screen(pilot)
        await pilot.press("a")
        audit = await wait_for(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded and app.screen,
            "the audit screen",
        )
        assert isinstance(audit, AuditScreen)
        status = str(audit.query_one("#audit-status", Static).render())
        assert status.startswith(f"newest {AUDIT_LIMIT} entries shown (older ones exist")
        assert len(audit.shown_actions()) == AUDIT_LIMIT


async def test_toasts_are_compact_at_80x24(ui_service: ConsoleService) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await tenants_screen(pilot)
        app.notify("pool resize acme: pool size 7, reserve 2", title="Done")
        toasts = await wait_for(pilot, lambda: list(app.screen.query(Toast)), "a toast")
        assert isinstance(toasts, list)
        toast = toasts[0]
        await pilot.pause()
        # The title and the one-line message: no blank padding lines around them.
        assert toast.outer_size.height == 2
        assert toast.region.right <= 80 and toast.region.width <= 48
