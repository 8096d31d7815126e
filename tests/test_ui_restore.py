"""Restore in the console, driven through Pilot on real backups and real restores (both
PostgreSQL versions): the form (a point in time or a backup), its plan, the typed confirmation,
the six steps and the report on the tenant's view, roll back; drills and replaced schemas on the
Backups screen; read-only mode hides and refuses all of it.

Every wait polls a condition up to a generous deadline (``wait_for``); nothing asserts on time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from helpers import detail_screen, fast, tenants_screen, wait_for
from test_ui import SIZE, Notes
from test_ui_backups import backed_up, backups_screen
from textual.pilot import Pilot
from textual.widgets import Button, Input, Log, Static

from console.config import Settings
from console.core.backups.catalog import BackupKind
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.restore_flow import request_restore, request_rollback
from console.ui.screens.backups import BackupTable
from console.ui.screens.prompt import ConfirmDrainScreen
from console.ui.screens.restore import RestoreScreen
from console.ui.screens.tenant_detail import TenantDetailScreen
from console.ui.tracker import OpState


async def names(su: asyncpg.Connection) -> list[str]:
    """The customers these tests added to acme (provisioning seeds others)."""
    rows = await su.fetch(
        "SELECT full_name FROM tenant_acme.customers WHERE email LIKE '%@restore.test' "
        "ORDER BY full_name"
    )
    return [r[0] for r in rows]


async def add_customer(su: asyncpg.Connection, name: str) -> None:
    await su.execute(
        "INSERT INTO tenant_acme.customers (email, full_name) VALUES ($1 || '@restore.test', $1)",
        name,
    )


async def open_detail(pilot: Pilot[Any], key: str) -> TenantDetailScreen:
    await tenants_screen(pilot)
    app = pilot.app
    assert isinstance(app, GoConsoleApp)
    app.open_tenant(key)
    return await detail_screen(pilot, key)


async def restore_form(pilot: Pilot[Any]) -> RestoreScreen:
    """R on the detail view: the form, with the tenant's backups listed."""
    app = pilot.app
    await pilot.press("R")
    form = await wait_for(
        pilot,
        lambda: isinstance(app.screen, RestoreScreen) and app.screen.records and app.screen,
        "the restore form with the tenant's backups",
    )
    assert isinstance(form, RestoreScreen)
    await pilot.pause()
    return form


async def confirm(pilot: Pilot[Any], key: str) -> None:
    """Type the key into the typed confirmation and press Enter."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDrainScreen), "the confirmation")
    await pilot.pause()
    await pilot.press(*key, "enter")


async def finished(pilot: Pilot[Any], name: str) -> None:
    app = pilot.app
    assert isinstance(app, GoConsoleApp)

    def done() -> bool:
        op = app.tracker.latest("acme")
        return op is not None and op.name == name and bool(op.outcome)

    await wait_for(pilot, done, f"{name} of acme to end")
    op = app.tracker.latest("acme")
    assert op is not None and op.state is OpState.SUCCEEDED, op.outcome if op else None


async def test_restore_to_a_backup_then_roll_back(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    """A bad point in time is refused in one line naming the format; picking the full shows
    its plan; the typed key confirms; the six steps end ✓ and the report follows; the data is
    the full's; Roll back appears and swaps the live data back."""
    await ui_service.provision("acme")
    await add_customer(su, "ada")
    await backed_up(ui_service, "acme", BackupKind.FULL)
    await add_customer(su, "bob")
    await backed_up(ui_service, "acme", BackupKind.INCREMENTAL)
    await add_customer(su, "cyd")  # after every backup
    before = await names(su)
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        detail = await open_detail(pilot, "acme")
        assert "tenant.restore" in {b.binding.id for b in app.active_bindings.values()}
        assert "tenant.rollback" not in {b.binding.id for b in app.active_bindings.values()}
        form = await restore_form(pilot)
        assert [r.kind for r in form.records] == [BackupKind.INCREMENTAL, BackupKind.FULL]

        await pilot.press(*"yesterday", "enter")
        await wait_for(pilot, lambda: "ISO 8601" in form.error_line(), "the format named")
        assert "\n" not in form.error_line()
        assert form.query_one("#continue", Button).disabled

        form.query_one("#restore-backups").focus()
        await pilot.press("down", "enter")  # the full (the list is newest first)
        await wait_for(pilot, lambda: form.choice is not None, "the plan")
        assert form.plan_text().startswith("Restore acme from 1 backup(s):"), form.plan_text()
        assert "full" in form.plan_text() and "pool" in form.plan_text()
        await pilot.click("#continue")
        await confirm(pilot, "acme")
        await finished(pilot, "restore")
        await wait_for(pilot, lambda: app.screen is detail, "back on the detail view")
        steps = str(detail.query_one("#restore-steps", Static).render())
        assert steps == "✓ plan · ✓ recover · ✓ apply · ✓ validate · ✓ switch · ✓ finish", steps
        log = "\n".join(detail.query_one("#progress", Log).lines)
        assert "Restore of acme:" in log and "replaced    tenant_acme__replaced_" in log, log
        assert "validation  ok: " in log and "status      ACTIVE" in log, log
        assert await names(su) == ["ada"]

        await wait_for(
            pilot,
            lambda: "tenant.rollback" in {b.binding.id for b in app.active_bindings.values()},
            "Roll back offered",
        )
        await pilot.press("U")
        await confirm(pilot, "acme")
        await finished(pilot, "rollback")
    assert await names(su) == before


async def test_restore_to_a_point_in_time_and_backups_screen(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    """A typed point in time after the incremental restores the incremental's data; the
    Backups screen lists the replaced schema, and d drills the tenant: its newest full's
    Checked cell says ✓ restore (before: never restored)."""
    await ui_service.provision("acme")
    await add_customer(su, "ada")
    await backed_up(ui_service, "acme", BackupKind.FULL)
    await add_customer(su, "bob")
    await backed_up(ui_service, "acme", BackupKind.INCREMENTAL)
    after = await su.fetchval("SELECT clock_timestamp()")
    await add_customer(su, "cyd")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "acme")
        form = await restore_form(pilot)
        await pilot.press(*after.isoformat(), "enter")
        await wait_for(pilot, lambda: form.choice is not None, "the plan")
        assert form.plan_text().startswith("Restore acme from 2 backup(s):"), form.plan_text()
        assert "before the requested" in form.plan_text()
        await pilot.click("#continue")
        await confirm(pilot, "acme")
        await finished(pilot, "restore")
        assert await names(su) == ["ada", "bob"]

        await pilot.press("t")  # from the detail view back to the tenants list
        screen = await backups_screen(pilot)
        await wait_for(pilot, lambda: screen.replaced, "the replaced schema listed")
        table = screen.query_one("#replaced-table")
        assert table.display
        assert str(screen.query_one(BackupTable).get_cell("acme", "verified")) != "✓ restore"
        focus = str(screen.query_one("#backup-focus", Static).render())
        assert "never restored (d runs a drill)" in focus, focus
        await pilot.press("d")
        await wait_for(pilot, lambda: screen.job and not screen.running(), "the drill to end")
        assert screen.job is not None and screen.job.state is OpState.SUCCEEDED
        await wait_for(
            pilot,
            lambda: str(screen.query_one(BackupTable).get_cell("acme", "verified")) == "✓ restore",
            "the drill recorded",
        )


async def test_read_only_hides_and_refuses_restore(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
) -> None:
    """Read-only: no Restore or Roll back key nor palette entry; R and d say why nothing
    happens."""
    await ui_service.provision("acme")
    await backed_up(ui_service, "acme", BackupKind.FULL)
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        detail = await open_detail(pilot, "acme")
        ids = {b.binding.id for b in app.active_bindings.values()}
        assert not {"tenant.restore", "tenant.rollback"} & ids
        assert detail.palette_commands() == []
        await pilot.press("R")
        await wait_for(pilot, lambda: notes.any("restore refused", "read-only"), "a refusal")
        assert not isinstance(app.screen, RestoreScreen)
        request_restore(app, "acme")
        request_rollback(app, "acme")
        await wait_for(
            pilot, lambda: notes.any("restore rollback refused", "read-only"), "a refusal"
        )
        await pilot.press("t")  # from the detail view back to the tenants list
        screen = await backups_screen(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: notes.any("backup drill refused", "read-only"), "refusal")
        assert screen.job is None


async def test_plan_refusal_is_one_line(ui_service: ConsoleService, su: asyncpg.Connection) -> None:
    """A chain whose full failed its last check is refused in the form, naming the link;
    nothing can be continued."""
    await ui_service.provision("acme")
    await backed_up(ui_service, "acme", BackupKind.FULL)
    await su.execute(
        "UPDATE public.backups SET verified_at = now(), verify_level = 'checksum', "
        "verify_result = 'checksum-mismatch: planted'"
    )
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "acme")
        form = await restore_form(pilot)
        form.query_one("#restore-backups").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "failed its last verification" in form.error_line(), "no")
        assert "\n" not in form.error_line()
        assert form.choice is None and form.query_one("#continue", Button).disabled
        assert form.query_one("#restore-to", Input).value == ""
