"""The Migrations screen driven through Pilot against a real database (both PostgreSQL versions).

Tenants are put at older revisions the way tests/test_migrations.py does it; runs are started,
retried and cancelled with key presses and clicks, and their outcome is checked in the database.
A run is held in progress deterministically with a :class:`TableGate` on the tenants' ``orders``
tables (the migration under test indexes them, inside each tenant's transaction). Every wait
polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from helpers import PATIENCE_S, TableGate, fast, tenants_screen, wait_for
from test_migrations import (
    HEAD,
    R1,
    R2,
    R3,
    add_customers,
    fix_duplicates,
    revisions_by_key,
    tenant_at,
)
from test_ui import (
    SIZE,
    Notes,
    bound_actions,
    footer_labels,
    table_column,
)
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from console.config import Settings
from console.core.identifiers import qualified
from console.core.migrations.run import RunProgress
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.screens.migrations import (
    ConfirmPlanScreen,
    ErrorDetailScreen,
    MigrationsScreen,
    RunOptionsScreen,
)
from console.ui.screens.prompt import ConfirmQuitScreen
from console.ui.screens.tenants import TenantsScreen

# Per-tenant table and runs table columns.
TENANT, RESULT, DETAIL = 0, 1, 2
RUN_TARGET, RUN_STATUS, RUN_OK, RUN_FAILED, RUN_BUSY = 1, 2, 3, 4, 5
# Tenants held at the gate wait on a lock: far beyond any wait in a test, so they never time out.
HELD_LOCK_TIMEOUT_S = PATIENCE_S * 4


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def held_service(
    make_service: Callable[..., Awaitable[ConsoleService]], settings: Settings
) -> ConsoleService:
    """``ui_service`` whose runs wait up to HELD_LOCK_TIMEOUT_S for a locked table, so that a
    closed gate holds them."""
    lifecycle = dataclasses.replace(settings.lifecycle, lock_timeout=HELD_LOCK_TIMEOUT_S)
    svc = await make_service(settings=fast(settings, lifecycle=lifecycle))
    await svc.init()
    return svc


def text_of(screen: object, selector: str) -> str:
    """The plain text a Static shows."""
    return str(screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


async def fill(pilot: Pilot[object], dialog: object, selector: str, text: str) -> None:
    """Click an Input of ``dialog``, erase it and type ``text``."""
    field = dialog.query_one(selector, Input)  # type: ignore[attr-defined]
    await pilot.click(selector)
    await pilot.press("end", *["backspace"] * len(field.value), *text)
    assert field.value == text


async def open_migrations(pilot: Pilot[object]) -> MigrationsScreen:
    """Press ``m`` and return the Migrations screen once it has loaded revisions and runs."""
    app = pilot.app
    await pilot.press("m")

    def ready() -> MigrationsScreen | None:
        screen = app.screen
        return screen if isinstance(screen, MigrationsScreen) and screen.loaded else None

    found = await wait_for(pilot, ready, "the migrations screen to load")
    assert isinstance(found, MigrationsScreen)
    return found


async def confirm_dialog(pilot: Pilot[object]) -> tuple[ConfirmPlanScreen, str]:
    """From the Migrations screen: ``r``, keep the defaults (head, concurrency 2, every tenant),
    submit; return the plan confirmation and the plan it shows."""
    app = pilot.app
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunOptionsScreen), "the run options")
    await pilot.click("#plan")
    found = await wait_for(
        pilot,
        lambda: app.screen if isinstance(app.screen, ConfirmPlanScreen) else None,
        "the plan confirmation",
    )
    assert isinstance(found, ConfirmPlanScreen)
    return found, text_of(found, "#plan-text Static")


async def run_started(pilot: Pilot[object], before: RunProgress | None) -> RunProgress:
    """The progress of the run started after ``before`` (waits for its first report)."""
    app = pilot.app
    assert isinstance(app, GoConsoleApp)
    state = await wait_for(
        pilot,
        lambda: app.migration_state if app.migration_state is not before else None,
        "the run to start",
    )
    assert isinstance(state, RunProgress)
    return state


async def run_finished(
    pilot: Pilot[object], screen: MigrationsScreen, before: RunProgress | None
) -> RunProgress:
    """The progress of the run started after ``before``, once it has finished and the screen
    says so."""
    app = pilot.app
    assert isinstance(app, GoConsoleApp)
    state = await run_started(pilot, before)
    await wait_for(pilot, lambda: not app.migration_running(), "the run to finish")
    await wait_for(
        pilot,
        lambda: f"Run {str(state.run_id)[:8]} finished" in text_of(screen, "#mig-progress"),
        "the progress line to say the run finished",
    )
    return state


def tenant_results(screen: MigrationsScreen) -> dict[str, tuple[str, str]]:
    """The per-tenant table: key -> (result, detail)."""
    keys = table_column(screen, "#mig-tenants", TENANT)
    results = table_column(screen, "#mig-tenants", RESULT)
    details = table_column(screen, "#mig-tenants", DETAIL)
    return {k: (r, d) for k, r, d in zip(keys, results, details, strict=True)}


def runs_shown(screen: MigrationsScreen) -> list[tuple[str, ...]]:
    """The runs table, newest first: (target, status, ok, failed, busy). The screen may shorten
    a long target; a shortened head is given back as HEAD."""
    columns = [
        table_column(screen, "#mig-runs", c)
        for c in (RUN_TARGET, RUN_STATUS, RUN_OK, RUN_FAILED, RUN_BUSY)
    ]
    columns[0] = [HEAD if t and HEAD.startswith(t) else t for t in columns[0]]
    return list(zip(*columns, strict=True))


async def run_record(su: asyncpg.Connection, run_id: object) -> tuple[str, dict[str, str]]:
    """A run's recorded status and its tenants' statuses."""
    status: str = await su.fetchval(
        "SELECT status FROM public.migration_runs WHERE id = $1", run_id
    )
    rows = await su.fetch(
        "SELECT t.key, r.status FROM public.migration_run_tenants r "
        "JOIN public.tenants t ON t.id = r.tenant_id WHERE r.run_id = $1",
        run_id,
    )
    return status, {r["key"]: r["status"] for r in rows}


async def revision_of_key(su: asyncpg.Connection, key: str) -> str | None:
    """One tenant's revision, read from its schema."""
    return (await revisions_by_key(su))[key]


async def alive_and(
    alive: Callable[[], Awaitable[None]], value: Callable[[], Awaitable[list[int]]], count: int
) -> bool:
    """``alive()``, then whether ``value()`` holds ``count`` items."""
    await alive()
    return len(await value()) == count


async def start_held_run(
    app: GoConsoleApp, pilot: Pilot[object], gate: TableGate
) -> tuple[MigrationsScreen, RunProgress]:
    """Start a run from the screen and wait until its two workers are held at the gate (each
    with one tenant inside its transaction); fails if the run ends meanwhile."""
    await tenants_screen(pilot)
    screen = await open_migrations(pilot)
    await confirm_dialog(pilot)
    await pilot.click("#run")
    state = await run_started(pilot, None)

    async def alive() -> None:
        if not app.migration_running():
            pytest.fail(f"the run ended while held at the gate: {state.as_json()}")

    await wait_for(pilot, lambda: alive_and(alive, gate.waiters, 2), "two tenants held at the gate")
    return screen, state


# -- 1. revisions, counts, behind ----------------------------------------------------------------


async def test_screen_shows_tenants_per_revision_and_how_many_are_behind(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    at = {"one_a": R1, "two_a": R2, "two_b": R2, "two_c": R2, "top_a": HEAD, "alien": HEAD}
    for key, revision in at.items():
        await tenant_at(ui_service, su, key, revision)
    # A revision this console's tree does not know is unknown, never behind.
    await su.execute(
        f"UPDATE {qualified('tenant_alien', 'schema_version')} SET version_num = '0099_future'"
    )
    status = await ui_service.migrations.status()
    assert (status.behind, status.unknown) == (4, 1)
    assert [(r.revision, r.tenants) for r in status.revisions] == [
        (R1, 1),
        (R2, 3),
        (HEAD, 1),
        ("0099_future", 1),
    ]

    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        screen = await open_migrations(pilot)
        lines = text_of(screen, "#mig-bars").splitlines()
        assert lines[0] == f"head {HEAD} · 4 tenant(s) behind · 1 at an unknown revision"
        rows = [line.split() for line in lines[2:]]
        # revision, bar, count, mark — in revision order, as status() has them
        assert [(r[0], int(r[2]), " ".join(r[3:])) for r in rows] == [
            (R1, 1, "… behind"),
            (R2, 3, "… behind"),
            (HEAD, 1, "✓ head"),
            ("0099_future", 1, "? unknown"),
        ]
        bars = {r[0]: len(r[1]) for r in rows}
        assert bars[R2] > bars[R1] == bars[HEAD] > 0  # bars are proportional to the counts
        assert runs_shown(screen) == []
        assert "No run in progress" in text_of(screen, "#mig-progress")
        assert "Run…" in footer_labels(app) and "Retry failed" in footer_labels(app)


# -- 2. plan, confirm, run, results ---------------------------------------------------------------


async def test_run_from_the_screen_confirms_the_plan_and_fills_in_the_results(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    at = {"alpha": R1, "bravo": R2, "charlie": R2, "delta": HEAD}
    for key, revision in at.items():
        await tenant_at(ui_service, su, key, revision)
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        screen = await open_migrations(pilot)

        # The plan: who moves from which revision, nothing started until confirmed.
        dialog, plan = await confirm_dialog(pilot)
        assert f"target {HEAD}: 3 tenant(s) to migrate, 1 already there, 0 skipped" in plan
        assert f"{R1} → {HEAD}: 1 tenant(s) via sql" in plan
        assert f"{R2} → {HEAD}: 2 tenant(s) via sql" in plan
        assert R3 not in plan  # nobody starts there
        # The safe answer is the default: Cancel has the focus, so Enter runs nothing.
        assert app.focused is dialog.query_one("#cancel", Button)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        # Escape too.
        await confirm_dialog(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        assert app.migration_state is None and not app.migration_running()
        assert await su.fetchval("SELECT count(*) FROM public.migration_runs") == 0
        assert await revisions_by_key(su) == at

        # Again, and Run.
        await confirm_dialog(pilot)
        await pilot.click("#run")
        state = await run_finished(pilot, screen, None)

        assert (state.total, state.done, state.failed, state.skipped) == (3, 3, 0, 0)
        await wait_for(
            pilot, lambda: len(tenant_results(screen)) == 3, "three rows in the tenant table"
        )
        assert tenant_results(screen) == {
            "alpha": ("✓ migrated", f"{R1} → {HEAD}"),
            "bravo": ("✓ migrated", f"{R2} → {HEAD}"),
            "charlie": ("✓ migrated", f"{R2} → {HEAD}"),
        }
        progress = text_of(screen, "#mig-progress")
        assert "3/3 · ✓ 3 · ✗ 0 · busy 0 · remaining 0" in progress
        assert "/s · ETA" in progress
        await wait_for(
            pilot,
            lambda: runs_shown(screen) == [(HEAD, "succeeded", "3", "0", "0")],
            "the run in the runs list",
        )
        await wait_for(
            pilot,
            lambda: text_of(screen, "#mig-bars").startswith(f"head {HEAD} · 0 tenant(s) behind"),
            "the revisions to show nobody behind",
        )
        assert notes.any("Migration run finished", "3 migrated, 0 failed, 0 busy")

    assert await revisions_by_key(su) == dict.fromkeys(at, HEAD)
    assert await run_record(su, state.run_id) == (
        "succeeded",
        dict.fromkeys(("alpha", "bravo", "charlie"), "succeeded"),
    )


# -- 3. a failing tenant, fixed, retried -----------------------------------------------------------


async def test_failed_tenant_shows_its_error_and_retry_failed_completes_it(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    for key in ("good_a", "good_b"):
        await tenant_at(ui_service, su, key, R2)
    bad = await tenant_at(ui_service, su, "zdupes", R2)
    # 0003 lower-cases addresses, then makes them unique: these two collide. The address holds
    # square brackets: the error is data, shown as it is, never parsed as markup.
    await add_customers(su, bad, "[/]Dup@x.com", "[/]dup@x.com", "b@x.com")
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        screen = await open_migrations(pilot)
        await confirm_dialog(pilot)
        await pilot.click("#run")
        first = await run_finished(pilot, screen, None)
        assert (first.done, first.failed) == (2, 1)

        await wait_for(pilot, lambda: len(tenant_results(screen)) == 3, "three result rows")
        results = tenant_results(screen)
        assert results["good_a"] == results["good_b"] == ("✓ migrated", f"{R2} → {HEAD}")
        result, detail = results["zdupes"]
        assert result == "✗ FAILED"
        assert detail == first.failures["zdupes"]
        assert "idx_customers_email" in detail and "23505" in detail
        assert "([/]dup@x.com)" in detail
        # Failures sort first (zdupes finished last), and Enter on one shows its whole error.
        assert table_column(screen, "#mig-tenants", TENANT)[0] == "zdupes"
        table = screen.query_one("#mig-tenants", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        shown = await wait_for(
            pilot,
            lambda: app.screen if isinstance(app.screen, ErrorDetailScreen) else None,
            "the error detail dialog",
        )
        assert text_of(shown, "#error-text Static") == first.failures["zdupes"]
        await pilot.press("escape")
        assert app.screen is screen
        table.move_cursor(row=1)  # a migrated tenant: nothing to show
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert "✗ 1" in text_of(screen, "#mig-progress")
        assert "f retries failures" in text_of(screen, "#mig-progress")
        await wait_for(
            pilot,
            lambda: runs_shown(screen) == [(HEAD, "failed", "2", "1", "0")],
            "the failed run in the runs list",
        )
        await wait_for(
            pilot, lambda: "1 tenant(s) behind" in text_of(screen, "#mig-bars"), "one behind"
        )
        assert notes.any("Migration run finished", "2 migrated, 1 failed")
        assert await revision_of_key(su, "zdupes") == R2

        # Fixed by hand, then "retry failed" from the screen: only that tenant runs again.
        await fix_duplicates(su, bad)
        await pilot.press("f")
        second = await run_finished(pilot, screen, first)
        assert (second.total, second.done, second.failed) == (1, 1, 0)
        await wait_for(pilot, lambda: len(tenant_results(screen)) == 1, "the retry's one row")
        assert tenant_results(screen) == {"zdupes": ("✓ migrated", f"{R2} → {HEAD}")}
        await wait_for(
            pilot,
            lambda: (
                runs_shown(screen)
                == [(HEAD, "succeeded", "1", "0", "0"), (HEAD, "failed", "2", "1", "0")]
            ),
            "the retry in the runs list",
        )
        await wait_for(
            pilot,
            lambda: "0 tenant(s) behind" in text_of(screen, "#mig-bars"),
            "nobody behind",
        )

        # Nothing left to retry.
        await pilot.press("f")
        await wait_for(pilot, lambda: notes.any("the last run has nothing to retry"), "a notice")
        assert app.migration_state is second

    assert await revisions_by_key(su) == dict.fromkeys(("good_a", "good_b", "zdupes"), HEAD)
    assert await run_record(su, second.run_id) == ("succeeded", {"zdupes": "succeeded"})


# -- 4. switching areas during a run, quitting during a run -------------------------------------


async def test_run_goes_on_in_another_area_and_quitting_asks_first(
    held_service: ConsoleService, su: asyncpg.Connection, table_gate: TableGate
) -> None:
    keys = ("sw_a", "sw_b", "sw_c")
    tenants = [await tenant_at(held_service, su, key, R3) for key in keys]
    await table_gate.close([qualified(t.schema_name, "orders") for t in tenants])
    app = GoConsoleApp(held_service)
    async with app.run_test(size=SIZE) as pilot:
        screen, state = await start_held_run(app, pilot, table_gate)
        await wait_for(
            pilot,
            lambda: "running: 0/3" in text_of(screen, "#mig-progress"),
            "the progress line to show the run going",
        )
        assert tenant_results(screen) == {}  # nothing finished yet

        # Another area: the run goes on.
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TenantsScreen), "the tenants area")
        assert app.migration_running()

        # Quitting asks first, and "n" stays.
        await pilot.press("ctrl+q")
        quit_dialog = await wait_for(
            pilot,
            lambda: app.screen if isinstance(app.screen, ConfirmQuitScreen) else None,
            "the quit confirmation",
        )
        assert "a migration run" in " ".join(
            str(s.render())
            for s in quit_dialog.query(Static)  # type: ignore[attr-defined]
        )
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TenantsScreen), "back to tenants")
        assert app.is_running and app.return_code is None
        assert app.migration_running()

        # Released while the operator is elsewhere: the run finishes there.
        await table_gate.open()
        await wait_for(pilot, lambda: not app.migration_running(), "the run to finish")
        assert isinstance(app.screen, TenantsScreen)
        assert (state.done, state.failed, state.remaining) == (3, 0, 0)
        # The Migrations screen followed the run while hidden.
        await wait_for(pilot, lambda: len(tenant_results(screen)) == 3, "three result rows")
        assert {r for r, _ in tenant_results(screen).values()} == {"✓ migrated"}

        # Back with m: the same screen, showing the finished run.
        back = await open_migrations(pilot)
        assert back is screen
        await wait_for(
            pilot,
            lambda: (
                f"Run {str(state.run_id)[:8]} finished: 3/3" in text_of(screen, "#mig-progress")
            ),
            "the finished run on the progress line",
        )
        await wait_for(
            pilot,
            lambda: runs_shown(screen) == [(HEAD, "succeeded", "3", "0", "0")],
            "the run in the runs list",
        )
        await wait_for(
            pilot, lambda: "0 tenant(s) behind" in text_of(screen, "#mig-bars"), "nobody behind"
        )

        # With nothing running, quitting does not ask.
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code == 0, "the app to quit")

    assert await revisions_by_key(su) == dict.fromkeys(keys, HEAD)
    assert (await run_record(su, state.run_id))[0] == "succeeded"


# -- 5. cancel ------------------------------------------------------------------------------------


async def test_cancel_finishes_tenants_in_flight_and_starts_no_new_ones(
    held_service: ConsoleService, su: asyncpg.Connection, table_gate: TableGate
) -> None:
    keys = ("cx_a", "cx_b", "cx_c", "cx_d", "cx_e")
    tenants = [await tenant_at(held_service, su, key, R3) for key in keys]
    await table_gate.close([qualified(t.schema_name, "orders") for t in tenants])
    notes = Notes()
    app = GoConsoleApp(held_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        # The plan's first two tenants are in flight (two workers), held at their index.
        screen, _ = await start_held_run(app, pilot, table_gate)
        await pilot.press("c")
        await wait_for(pilot, lambda: notes.any("cancelling"), "the cancel notice")
        assert app.migration_running()
        await table_gate.open()
        state = await run_finished(pilot, screen, None)

        # In flight: finished. The rest: never started.
        assert (state.total, state.done, state.failed, state.skipped) == (5, 2, 0, 0)
        assert state.remaining == 3
        assert tenant_results(screen) == {
            "cx_a": ("✓ migrated", f"{R3} → {HEAD}"),
            "cx_b": ("✓ migrated", f"{R3} → {HEAD}"),
        }
        assert "2/5 · ✓ 2 · ✗ 0 · busy 0 · remaining 3" in text_of(screen, "#mig-progress")
        await wait_for(
            pilot,
            lambda: runs_shown(screen) == [(HEAD, "cancelled", "2", "0", "0")],
            "the cancelled run in the runs list",
        )
        await wait_for(
            pilot, lambda: "3 tenant(s) behind" in text_of(screen, "#mig-bars"), "3 behind"
        )
        assert await revisions_by_key(su) == {
            "cx_a": HEAD,
            "cx_b": HEAD,
            "cx_c": R3,
            "cx_d": R3,
            "cx_e": R3,
        }
        assert await run_record(su, state.run_id) == (
            "cancelled",
            {
                "cx_a": "succeeded",
                "cx_b": "succeeded",
                "cx_c": "pending",
                "cx_d": "pending",
                "cx_e": "pending",
            },
        )

        # "Retry failed" takes the tenants the cancelled run never started.
        await pilot.press("f")
        rest = await run_finished(pilot, screen, state)
        assert (rest.total, rest.done) == (3, 3)
        assert set(tenant_results(screen)) == {"cx_c", "cx_d", "cx_e"}

    assert await revisions_by_key(su) == dict.fromkeys(keys, HEAD)


# -- 6. read-only ---------------------------------------------------------------------------------


async def test_read_only_shows_revisions_but_hides_and_refuses_runs(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    su: asyncpg.Connection,
) -> None:
    await tenant_at(ui_service, su, "ro_a", R3)
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        screen = await open_migrations(pilot)
        assert text_of(screen, "#mig-bars").startswith(f"head {HEAD} · 1 tenant(s) behind")

        assert not {"start_run", "retry_failed"} & bound_actions(app)
        await pilot.pause()
        assert not {"Run…", "Retry failed"} & footer_labels(app)
        assert "Refresh" in footer_labels(app)  # reading is still offered

        await pilot.press("r")  # not bound in read-only mode
        await pilot.press("f")
        assert app.screen is screen

        screen.action_start_run()  # invoked anyway (a remapped key, a stale binding)
        await wait_for(pilot, lambda: notes.any("migrate refused", "read-only"), "a refusal")
        screen.action_retry_failed()
        await wait_for(pilot, lambda: notes.any("migrate retry refused", "read-only"), "refusal")
        assert app.screen is screen
        assert not app.migration_running() and app.migration_state is None

    assert await revisions_by_key(su) == {"ro_a": R3}
    assert await su.fetchval("SELECT count(*) FROM public.migration_runs") == 0


# -- bad options ----------------------------------------------------------------------------------


async def test_bad_run_options_are_refused_and_shown_as_typed(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await tenant_at(ui_service, su, "opt_a", R3)
    notes = Notes()
    app = GoConsoleApp(ui_service)
    # Notifications rendered as toasts, as in a terminal: an error text is never parsed as markup.
    async with app.run_test(size=SIZE, message_hook=notes, notifications=True) as pilot:
        await tenants_screen(pilot)
        screen = await open_migrations(pilot)
        await pilot.press("r")
        dialog = await wait_for(
            pilot,
            lambda: app.screen if isinstance(app.screen, RunOptionsScreen) else None,
            "the run options",
        )
        assert isinstance(dialog, RunOptionsScreen)
        assert dialog.query_one("#target", Input).value == HEAD

        # Each is submitted with Enter in the field just typed into.
        await fill(pilot, dialog, "#concurrency", "40")
        await pilot.press("enter")
        await wait_for(pilot, lambda: text_of(dialog, "#run-error"), "the concurrency error")
        assert app.screen is dialog
        assert text_of(dialog, "#run-error") == "concurrency must be between 1 and 32, got '40'"

        await fill(pilot, dialog, "#concurrency", "2")
        await fill(pilot, dialog, "#scope", "opt_a,[/]x")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "[/]x" in text_of(dialog, "#run-error"), "the scope error, as typed"
        )
        assert app.screen is dialog
        assert text_of(dialog, "#run-error").startswith("invalid tenant key '[/]x'")

        await fill(pilot, dialog, "#scope", "")
        await fill(pilot, dialog, "#target", "[/]0009")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: notes.any("unknown revision '[/]0009'"), "the unknown revision"
        )
        assert app.screen is screen
        assert not app.migration_running() and app.migration_state is None
    assert await revisions_by_key(su) == {"opt_a": R3}


async def test_run_form_fits_at_80x24_with_labelled_buttons(ui_service: ConsoleService) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await tenants_screen(pilot)
        await open_migrations(pilot)
        await pilot.press("r")
        form = await wait_for(
            pilot,
            lambda: app.screen if isinstance(app.screen, RunOptionsScreen) else None,
            "the run options",
        )
        assert isinstance(form, RunOptionsScreen)
        await pilot.pause()
        for selector, label in (("#cancel", "Cancel"), ("#plan", "Plan…")):
            button = form.query_one(selector, Button)
            shown = form.find_widget(button)
            assert shown.region.intersection(shown.clip) == shown.region, f"{label} is cut"
            assert button.content_size.height >= 1 and str(button.label) == label
            assert label in "".join(
                segment.text
                for line in button.render_lines(button.region.reset_offset)
                for segment in line
            )
        field = form.query_one("#scope", Input)
        shown = form.find_widget(field)
        assert shown.region.intersection(shown.clip) == shown.region
