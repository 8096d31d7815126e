"""The Textual console driven through Pilot against a real database (both PostgreSQL versions).

Every wait polls a condition with ``pilot.pause`` up to a generous deadline and fails with a
message naming what never happened; nothing asserts on time.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from helpers import detail_screen, fast, tenants_screen, wait_for
from textual import events
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Log, Static

from console.config import Settings, UiSettings
from console.core.locks import TENANT_LOCK_CLASS
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.screens.audit import AuditScreen
from console.ui.screens.prompt import ConfirmDrainScreen, ConfirmKeyScreen
from console.ui.screens.provision import ProvisionScreen
from console.ui.screens.tenant_detail import TenantDetailScreen
from console.ui.screens.tenants import TenantsScreen
from console.ui.tenant_view import PAGE_SIZE
from console.ui.themes import FALLBACK_THEME, themes_dir

SIZE = (160, 48)
SIZE_CELL = re.compile(r"\d+(\.\d)? (B|kB|MB|GB|TB)")
# What the template gives every tenant (the alembic version table is not listed).
TENANT_TABLES = {"categories", "customers", "deletion_log", "order_items", "orders", "products"}


# -- helpers ----------------------------------------------------------------------------------


class Notes:
    """Records every notification the app raises (a run_test message hook)."""

    def __init__(self) -> None:
        self.seen: list[Notification] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.seen.append(message.notification)

    def texts(self) -> list[str]:
        return [f"{n.title}: {n.message}" for n in self.seen]

    def any(self, *fragments: str) -> bool:
        return any(all(f in text for f in fragments) for text in self.texts())


def table_column(screen: object, selector: str, column: int) -> list[str]:
    """One column of a DataTable, top to bottom."""
    table: DataTable[str] = screen.query_one(selector, DataTable)  # type: ignore[attr-defined]
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def type_text(pilot: Pilot[object], text: str) -> None:
    await pilot.press(*text)


async def status_of(su: asyncpg.Connection, key: str) -> str | None:
    return await su.fetchval("SELECT status::text FROM public.tenants WHERE key = $1", key)


async def audit_actions(su: asyncpg.Connection, key: str) -> list[str]:
    rows = await su.fetch(
        "SELECT a.action_type FROM public.tenant_audit_log a "
        "JOIN public.tenants t ON t.id = a.tenant_id WHERE t.key = $1 "
        "ORDER BY a.action_timestamp, a.id",
        key,
    )
    return [r[0] for r in rows]


async def insert_registry(su: asyncpg.Connection, rows: list[tuple[str, str, str]]) -> None:
    """Registry rows only (no schemas): (key, display name, status)."""
    await su.executemany(
        "INSERT INTO public.tenants (key, schema_name, display_name, status) "
        "VALUES ($1, 'tenant_' || $1, $2, $3::tenant_status)",
        rows,
    )


def bound_actions(app: GoConsoleApp) -> set[str]:
    """Actions of the bindings that apply on the current screen (enabled or not)."""
    return {b.binding.action for b in app.screen.active_bindings.values()}


def footer_labels(app: GoConsoleApp) -> set[str]:
    """Descriptions shown in the footer of the current screen (its FooterKey widgets)."""
    return {
        getattr(key, "description", "") for key in app.screen.query_one(Footer).query("FooterKey")
    }


# -- opening, filtering, opening a tenant -------------------------------------------------------


async def test_console_lists_filters_and_opens_tenants(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await ui_service.provision("acme_outdoors", "Acme Outdoors")
    await ui_service.provision("bolt_bikes", "Bolt Bikes")
    await insert_registry(
        su,
        [
            ("cedar_crafts", "Cedar Crafts", "INACTIVE"),
            ("delta_foods", "Delta Outdoor Foods", "INITIALIZING"),
        ],
    )
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        assert screen.shown_keys() == ["acme_outdoors", "bolt_bikes", "cedar_crafts", "delta_foods"]
        assert table_column(screen, "#tenant-table", 2)[:3] == [
            "● ACTIVE",
            "● ACTIVE",
            "○ INACTIVE",
        ]
        # Provisioned tenants have their catalog figures; registry-only rows show a dash.
        assert table_column(screen, "#tenant-table", 6) == ["6", "6", "—", "—"]
        # Sizes and revisions follow in the refresh right after the first paint.
        await wait_for(
            pilot,
            lambda: all(
                SIZE_CELL.fullmatch(c) for c in table_column(screen, "#tenant-table", 4)[:2]
            ),
            "the schema sizes of the provisioned tenants",
        )
        assert table_column(screen, "#tenant-table", 4)[2:] == ["—", "—"]
        revisions = table_column(screen, "#tenant-table", 9)
        assert "—" not in revisions[:2] and revisions[2:] == ["—", "—"]

        # Filter as you type: key or name substring, case-insensitive.
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "filter"
        await type_text(pilot, "outdoor")
        assert screen.shown_keys() == ["acme_outdoors", "delta_foods"]
        await type_text(pilot, "s")
        assert screen.shown_keys() == ["acme_outdoors"]
        await pilot.press("enter")  # back to the table
        assert isinstance(app.focused, DataTable)
        await pilot.press("escape")  # clears the filter
        assert screen.shown_keys() == [
            "acme_outdoors",
            "bolt_bikes",
            "cedar_crafts",
            "delta_foods",
        ]

        # 's' cycles the status filter through the statuses some tenant has:
        # all -> INITIALIZING -> ACTIVE -> INACTIVE -> all.
        await pilot.press("s")
        assert screen.shown_keys() == ["delta_foods"]
        await pilot.press("s")
        assert screen.shown_keys() == ["acme_outdoors", "bolt_bikes"]
        await pilot.press("s")
        assert screen.shown_keys() == ["cedar_crafts"]
        await pilot.press("s")
        assert screen.shown_keys() == [
            "acme_outdoors",
            "bolt_bikes",
            "cedar_crafts",
            "delta_foods",
        ]
        assert "status all" in str(screen.query_one("#tenant-status", Static).render())

        # Enter on the second row opens that tenant with its tables and RLS state (the cursor
        # stayed on cedar_crafts through the INACTIVE filter; Home goes to the first row).
        await pilot.press("home", "down", "enter")
        detail = await detail_screen(pilot, "bolt_bikes")
        await wait_for(
            pilot,
            lambda: set(table_column(detail, "#detail-tables", 0)) == TENANT_TABLES,
            "bolt_bikes' tables in the detail view",
        )
        assert set(table_column(detail, "#detail-tables", 3)) == {"✓ yes"}
        assert "Actions: deactivate (d), offboard (o)" in str(
            detail.query_one("#available", Static).render()
        )
        await pilot.press("escape")
        assert isinstance(app.screen, TenantsScreen)


async def test_square_brackets_are_shown_as_typed(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    """Names and audit details are data, never console markup (an unmatched [/] used to
    crash the table, leave the detail view loading and crash the audit details dialog)."""
    name = "Acme [/] [red]Red[/red] [b]"
    await insert_registry(su, [("acme", name, "ACTIVE")])
    await su.execute(
        "INSERT INTO public.tenant_audit_log "
        "(tenant_id, action_type, actor, actor_host, actor_address, details) "
        "SELECT id, 'deactivate.backup', 'ops', 'bastion', 'local', $1::jsonb "
        "FROM public.tenants WHERE key = 'acme'",
        {"error": "pg_dump: [/] [bold]failed"},  # the su connection encodes jsonb
    )
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        await pilot.pause()
        assert table_column(screen, "#tenant-table", 1) == [name]

        await pilot.press("enter")
        detail = await detail_screen(pilot, "acme")
        await pilot.pause()
        assert str(detail.query_one("#summary", Static).render()).startswith(f"{name}  (acme)")

        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded,
            "the audit screen",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("#audit-json"), "the details dialog")
        await pilot.pause()
        shown = str(app.screen.query_one("#audit-json", Static).render())
        assert '"error": "pg_dump: [/] [bold]failed"' in shown


# -- provisioning through the form ----------------------------------------------------------------


async def test_provision_through_the_form(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        await pilot.press("n")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, ProvisionScreen) and app.screen, "the form"
        )
        assert isinstance(form, ProvisionScreen)
        assert form.query_one("#provision", Button).disabled
        await type_text(pilot, "nova_shop")
        await wait_for(
            pilot, lambda: not form.query_one("#provision", Button).disabled, "the key checked"
        )
        assert str(form.query_one("#key-error", Static).render()) == ""
        await pilot.press("enter")

        # The form closes, the detail view follows the operation, the tenant ends ACTIVE.
        detail = await detail_screen(pilot, "nova_shop")
        await wait_for(
            pilot,
            lambda: status_of(su, "nova_shop"),
            "nova_shop to be registered",
        )

        async def active() -> bool:
            return await status_of(su, "nova_shop") == "ACTIVE"

        await wait_for(pilot, active, "nova_shop to become ACTIVE")
        await wait_for(
            pilot,
            lambda: detail.status() is not None and detail.status().value == "ACTIVE",
            "the detail view to show ACTIVE",
        )
        op = app.tracker.latest("nova_shop")
        assert op is not None and op.name == "provision"
        await wait_for(pilot, lambda: op.state.value == "succeeded", "the tracked operation")
        assert "done — tenant is now ACTIVE" in op.outcome
        assert any(e.step == "register" for e in op.events)
        await wait_for(
            pilot,
            lambda: set(table_column(detail, "#detail-tables", 0)) == TENANT_TABLES,
            "the new tenant's tables",
        )
    assert "provision.register" in await audit_actions(su, "nova_shop")


@pytest.mark.parametrize("bad_key", ["Nova-Shop", "1shop", "admin"])
async def test_provision_form_refuses_a_bad_key(
    ui_service: ConsoleService, su: asyncpg.Connection, bad_key: str
) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvisionScreen), "the form")
        form = app.screen
        await type_text(pilot, bad_key)
        assert form.query_one("#key", Input).value == bad_key
        assert form.query_one("#provision", Button).disabled
        error = str(form.query_one("#key-error", Static).render())
        assert bad_key in error and "tenant key" in error
        await pilot.press("enter")  # submitting anyway is refused in place
        assert app.screen is form
        assert app.tracker.latest(bad_key) is None
        await pilot.press("escape")
        assert isinstance(app.screen, TenantsScreen)
    assert await su.fetchval("SELECT count(*) FROM public.tenants") == 0


async def test_provision_form_keeps_fast_typing_in_order(ui_service: ConsoleService) -> None:
    """Keys that arrive together, as from a fast typist or a paste ("abc", Tab, "X"), land where
    they were typed: Tab moves the focus before the next key is delivered."""
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        await pilot.press("n")
        form = await wait_for(
            pilot, lambda: isinstance(app.screen, ProvisionScreen) and app.screen, "the form"
        )
        assert isinstance(form, ProvisionScreen)
        for key, char in [("a", "a"), ("b", "b"), ("c", "c"), ("tab", "\t"), ("X", "X")]:
            app.post_message(events.Key(key, char))  # queued at once, as a terminal read gives
        name = form.query_one("#name", Input)
        await wait_for(pilot, lambda: name.value, "the key after Tab to arrive")
        assert (form.query_one("#key", Input).value, name.value) == ("abc", "X")
        assert app.focused is name


async def test_provision_form_refuses_a_key_in_use(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await ui_service.provision("acme", "Acme")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvisionScreen), "the form")
        form = app.screen
        error = form.query_one("#key-error", Static)
        button = form.query_one("#provision", Button)

        # Checked against the registry as typed.
        await type_text(pilot, "acme")
        await wait_for(pilot, lambda: "already in use" in str(error.render()), "the refusal")
        assert str(error.render()) == (
            "tenant key 'acme' is already in use (status ACTIVE); choose another key"
        )
        assert button.disabled
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form and app.tracker.latest("acme") is None

        # Free while typed, taken before Enter: refused on submit too, in the form.
        await type_text(pilot, "_two")
        await wait_for(pilot, lambda: not button.disabled, "acme_two to be found free")
        assert str(error.render()) == ""
        await ui_service.provision("acme_two")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "already in use" in str(error.render()), "the refusal")
        assert app.screen is form and app.tracker.latest("acme_two") is None
    # Only the one provision that took the key: the form started none.
    assert (await audit_actions(su, "acme_two")).count("provision.register") == 1
    assert await su.fetchval("SELECT count(*) FROM public.tenants") == 2


# -- deactivate with the typed confirmation -------------------------------------------------------


async def test_deactivate_needs_the_typed_key(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await ui_service.provision("acme", "Acme")
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        await pilot.press("enter")
        await detail_screen(pilot, "acme")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKeyScreen), "the confirmation")
        dialog = app.screen
        assert isinstance(app.focused, Input) and app.focused.id == "confirm-input"

        # A wrong key: the confirm button stays disabled and Enter does nothing.
        await type_text(pilot, "acm")
        assert dialog.query_one("#confirm", Button).disabled
        await pilot.press("enter")
        assert app.screen is dialog
        assert "nothing will be done" in str(dialog.query_one("#confirm-hint", Static).render())
        assert app.tracker.latest("acme") is None

        # Escape cancels: nothing started, nothing changed.
        await pilot.press("escape")
        assert isinstance(app.screen, TenantDetailScreen)
        assert app.tracker.latest("acme") is None
        await wait_for(pilot, lambda: notes.any("deactivate acme cancelled"), "the cancel notice")
        assert await status_of(su, "acme") == "ACTIVE"
        assert not [a for a in await audit_actions(su, "acme") if a.startswith("deactivate.")]

        # The Cancel button cancels whatever was typed.
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKeyScreen), "the confirmation")
        await type_text(pilot, "acmex")
        await pilot.click("#cancel")
        assert isinstance(app.screen, TenantDetailScreen)
        assert app.tracker.latest("acme") is None

        # The right key confirms; the tenant ends INACTIVE.
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKeyScreen), "the confirmation")
        dialog = app.screen
        await type_text(pilot, "acme")
        assert not dialog.query_one("#confirm", Button).disabled
        await pilot.press("enter")

        async def inactive() -> bool:
            return await status_of(su, "acme") == "INACTIVE"

        await wait_for(pilot, inactive, "acme to become INACTIVE")
        op = app.tracker.latest("acme")
        assert op is not None and op.name == "deactivate"
        await wait_for(pilot, lambda: op.state.value == "succeeded", "the operation to finish")
    assert [a for a in await audit_actions(su, "acme") if a.startswith("deactivate.")]


async def test_drain_dialog_takes_timeout_and_force(
    ui_service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    """The CLI's --timeout (checked as typed, with its rule) and --force, in the dialog; the
    operation runs with them: timeout 0 with force terminates a lock holder at once."""
    tenant = await ui_service.provision("acme", "Acme")
    holder = await asyncpg.connect(database_dsn, server_settings={"application_name": "report"})
    tx = holder.transaction()
    await tx.start()
    await holder.execute(f'LOCK TABLE "{tenant.schema_name}".orders IN ACCESS SHARE MODE')
    holder_pid = holder.get_server_pid()
    app = GoConsoleApp(ui_service)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await tenants_screen(pilot)
            app.open_tenant("acme")
            await detail_screen(pilot, "acme")
            await pilot.press("d")
            dialog = await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmDrainScreen) and app.screen, "dialog"
            )
            assert isinstance(dialog, ConfirmDrainScreen)
            steps = str(dialog.query_one("#confirm-steps-text", Static).render())
            assert "wait up to 30s" in steps and "then fail and restore access" in steps
            assert "PgBouncer is not configured" in steps
            confirm = dialog.query_one("#confirm", Button)

            # A bad timeout is refused as typed, with the CLI's rule; the key alone cannot
            # confirm then.
            timeout = dialog.query_one("#drain-timeout", Input)
            timeout.focus()
            await pilot.press("end", "backspace", "backspace", *"-1")
            hint = dialog.query_one("#confirm-hint", Static)
            assert str(hint.render()) == "timeout must be between 0 and 86400 seconds, got -1"
            dialog.query_one("#confirm-input", Input).focus()
            await type_text(pilot, "acme")
            assert confirm.disabled
            await pilot.press("enter")
            assert app.screen is dialog and app.tracker.latest("acme") is None
            assert str(hint.render()) == (
                "timeout must be between 0 and 86400 seconds, got -1 "
                "(nothing was done; Esc cancels)"
            )

            timeout.focus()
            await pilot.press("end", "backspace", "backspace", "0")
            assert str(hint.render()) == ""
            await pilot.click("#drain-force")
            assert dialog.query_one("#drain-force", Checkbox).value
            steps = str(dialog.query_one("#confirm-steps-text", Static).render())
            assert "wait up to 0s" in steps and "then terminate them" in steps
            assert not confirm.disabled
            await pilot.click("#confirm")

            await wait_for(
                pilot,
                lambda: (
                    app.tracker.latest("acme")
                    and app.tracker.latest("acme").state.value != "running"
                ),
                "the deactivation to end",
            )
            op = app.tracker.latest("acme")
            assert op is not None and op.state.value == "succeeded", op.outcome
            messages = [e.message for e in op.events]
            assert "waiting up to 0s for lock holders" in messages
            assert any(m.startswith(f"terminating pid {holder_pid} ") for m in messages)
    finally:
        await holder.close()
    assert await status_of(su, "acme") == "INACTIVE"


async def test_busy_tenant_hides_its_actions_and_names_the_backend(
    ui_service: ConsoleService, database_dsn: str
) -> None:
    await ui_service.provision("acme", "Acme")
    holder = await asyncpg.connect(database_dsn, server_settings={"application_name": "runbook"})
    app = GoConsoleApp(ui_service)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tenants_screen(pilot)
            app.open_tenant("acme")
            detail = await detail_screen(pilot, "acme")
            await wait_for(pilot, lambda: "Deactivate" in footer_labels(app), "the actions")

            await holder.execute("SELECT pg_advisory_lock($1, hashtext('acme'))", TENANT_LOCK_CLASS)
            banner = f"runbook (backend pid {holder.get_server_pid()})"
            await wait_for(
                pilot,
                lambda: banner in str(detail.query_one("#busy", Static).render()),
                "the BUSY banner naming the holder's backend pid",
            )
            await wait_for(
                pilot,
                lambda: not footer_labels(app) & {"Deactivate", "Offboard"},
                "the footer to stop offering the actions",
            )
            await pilot.press("d")
            assert app.screen is detail

            await holder.execute("SELECT pg_advisory_unlock_all()")
            await wait_for(
                pilot,
                lambda: {"Deactivate", "Offboard"} <= footer_labels(app),
                "the actions back once the holder is gone",
            )
    finally:
        await holder.close()


async def test_progress_shows_its_latest_lines_at_80x24(ui_service: ConsoleService) -> None:
    await ui_service.provision("acme", "Acme")
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await tenants_screen(pilot)
        app.open_tenant("acme")
        detail = await detail_screen(pilot, "acme")
        app.request_action("reactivate", "acme")  # refused (ACTIVE): a short operation
        refused = await wait_for(
            pilot,
            lambda: (o := app.tracker.latest("acme")) and o.state.value != "running" and o,
            "the refused reactivation to end (it holds the tenant's lock while it runs)",
        )
        await ui_service.deactivate("acme", timeout=1)
        app.request_action("reactivate", "acme")
        op = await wait_for(
            pilot,
            lambda: (
                (o := app.tracker.latest("acme"))
                and o is not refused
                and o.state.value != "running"
                and o
            ),
            "the reactivation to end",
        )
        log = detail.query_one("#progress", Log)
        await wait_for(pilot, lambda: log.lines and log.lines[-1].startswith("= "), "the outcome")
        await pilot.pause()
        assert len(log.lines) >= 4, log.lines
        shown = detail.find_widget(log)
        visible = shown.region.intersection(shown.clip)
        assert visible == shown.region, "the progress log is cut off at 80x24"
        assert log.scroll_offset.y == log.max_scroll_y
        assert log.size.height >= min(len(log.lines), 10), (log.size, len(log.lines))
        assert op is not None


# -- audit ---------------------------------------------------------------------------------------


async def test_audit_screen_shows_and_follows_new_entries(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        await tenants_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvisionScreen), "the form")
        await type_text(pilot, "first_shop")
        await pilot.press("enter")

        async def active(key: str) -> bool:
            return await status_of(su, key) == "ACTIVE"

        await wait_for(pilot, lambda: active("first_shop"), "first_shop to become ACTIVE")

        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded,
            "the audit screen",
        )
        audit = app.screen
        assert isinstance(audit, AuditScreen)
        tenants = table_column(audit, "#audit-table", 1)
        actions = audit.shown_actions()
        assert ("first_shop", "provision.register") in zip(tenants, actions, strict=True)
        # Newest first.
        when = table_column(audit, "#audit-table", 0)
        assert when == sorted(when, reverse=True)

        # Another operator provisions while the screen is open: it appears without a keypress.
        await ui_service.provision("second_shop")
        await wait_for(
            pilot,
            lambda: "second_shop" in table_column(audit, "#audit-table", 1),
            "second_shop's audit entries to appear on the open audit screen",
        )
        assert table_column(audit, "#audit-table", 1)[0] == "second_shop"
        assert table_column(audit, "#audit-table", 2)[0].startswith("provision.")


# -- read-only mode -----------------------------------------------------------------------------


async def test_read_only_hides_and_refuses_mutations(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    su: asyncpg.Connection,
) -> None:
    await ui_service.provision("acme")
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await tenants_screen(pilot)
        assert screen.shown_keys() == ["acme"]
        assert "app.provision" not in bound_actions(app)
        await pilot.pause()
        assert "New tenant" not in footer_labels(app)
        assert "Filter" in footer_labels(app)  # the footer is there, only mutations are gone

        await pilot.press("n")  # not bound in read-only mode
        assert isinstance(app.screen, TenantsScreen)

        app.action_provision()
        await wait_for(pilot, lambda: notes.any("provision refused", "read-only"), "a refusal")
        assert not isinstance(app.screen, ProvisionScreen)

        await pilot.press("enter")
        detail = await detail_screen(pilot, "acme")
        assert not any(a.startswith("tenant(") for a in bound_actions(app))
        await pilot.pause()
        assert not footer_labels(app) & {"Deactivate", "Offboard", "Reactivate"}
        assert "Back" in footer_labels(app)
        assert "Read-only mode" in str(detail.query_one("#available", Static).render())
        await pilot.press("d")
        assert app.screen is detail

        app.request_action("deactivate", "acme")
        await wait_for(pilot, lambda: notes.any("deactivate refused", "read-only"), "a refusal")
        app.request_action("offboard", "acme")
        await wait_for(pilot, lambda: notes.any("offboard refused", "read-only"), "a refusal")
        assert app.screen is detail
        assert app.tracker.running() == []
        assert app.tracker.latest("acme") is None
    assert await status_of(su, "acme") == "ACTIVE"
    assert not [
        a for a in await audit_actions(su, "acme") if a.split(".")[0] in {"deactivate", "offboard"}
    ]


# -- bad configuration is reported ----------------------------------------------------------------


GOOD_THEME = """
name = "test-good"
dark = true
primary = "#3a7bd5"
"""
BAD_THEME = """
name = "test-bad"
primary = "not-a-colour"
"""


@pytest.mark.parametrize("wanted", ["no-such-theme", "test-good"])
async def test_theme_problems_are_reported_and_fall_back(
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    tmp_path: Path,
    wanted: str,
) -> None:
    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "good.toml").write_text(GOOD_THEME)
    (folder / "broken.toml").write_text(BAD_THEME)
    dark = themes_dir() / f"{FALLBACK_THEME}.toml"
    (folder / dark.name).write_text(dark.read_text(encoding="utf-8"))
    themed = dataclasses.replace(settings, ui=UiSettings(refresh_interval=0.3, theme=wanted))
    svc = await make_service(settings=themed)
    await svc.init()
    notes = Notes()
    app = GoConsoleApp(svc, themes_folder=folder)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        assert "test-good" in app.available_themes
        assert "test-bad" not in app.available_themes
        assert notes.any("Theme file ignored", "broken.toml", "not-a-colour")
        if wanted == "no-such-theme":
            assert app.theme == FALLBACK_THEME
            assert notes.any("theme 'no-such-theme' is not available", FALLBACK_THEME)
        else:
            assert app.theme == "test-good"
            assert not notes.any("is not available")


async def test_key_map_reports_unknown_ids_and_remaps_known_ones(
    make_service: Callable[..., Awaitable[ConsoleService]], settings: Settings
) -> None:
    mapped = fast(settings, keys={"area.audit": "f5", "area.nowhere": "f6"})
    svc = await make_service(settings=mapped)
    await svc.init()
    notes = Notes()
    app = GoConsoleApp(svc)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await tenants_screen(pilot)
        assert notes.any("Key map", "area.nowhere")
        assert not notes.any("Key map", "area.audit")
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), "f5 to open audit")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TenantsScreen), "t to go back")
        await pilot.press("a")  # remapped away from 'a'
        assert isinstance(app.screen, TenantsScreen)


# -- 100,000 tenants ------------------------------------------------------------------------------


# PostgreSQL 18 only (not a skip: the cluster fixture is pinned): the registry read is the same
# SQL on both versions, and 100,000 rows take several seconds per run.
@pytest.mark.parametrize("pg_cluster", ["pg18"], indirect=True)
async def test_hundred_thousand_tenants_open_and_filter(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    """At the default refresh interval (a 100k-row reload every 0.3 s would starve the test)."""
    await su.execute(
        "INSERT INTO public.tenants (key, schema_name, display_name, status) "
        "SELECT k, 'tenant_' || k, 'Tenant ' || i, 'ACTIVE' "
        "FROM generate_series(1, 100000) AS i, LATERAL (SELECT 't' || lpad(i::text, 6, '0')) AS "
        "x(k)"
    )
    app = GoConsoleApp(service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await tenants_screen(pilot)
        assert screen.view_size() == 100_000
        assert screen.shown_keys() == [f"t{i:06d}" for i in range(1, PAGE_SIZE + 1)]
        assert screen.query_one("#tenant-table", DataTable).row_count == PAGE_SIZE

        await pilot.press("slash")
        await type_text(pilot, "t04217")
        assert screen.shown_keys() == [f"t04217{d}" for d in range(10)]
        assert screen.view_size() == 10
        await pilot.press("backspace")
        assert screen.view_size() == 100
        matches = [f"t0421{d:02d}" for d in range(100)]
        pages = [matches[i : i + PAGE_SIZE] for i in range(0, len(matches), PAGE_SIZE)]
        assert screen.shown_keys() == pages[0]

        await pilot.press("enter", "right_square_bracket")  # next page, if there is one
        assert screen.shown_keys() == pages[min(1, len(pages) - 1)]
        await pilot.press("escape", "right_square_bracket")  # no filter: page 2 of 100,000
        assert screen.shown_keys() == [f"t{i:06d}" for i in range(PAGE_SIZE + 1, 2 * PAGE_SIZE + 1)]
