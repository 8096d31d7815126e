"""The week's size growth on the tenants screen and the tenant detail, read from the statistics
history (fixed rows) against the app's injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from helpers import detail_screen, tenants_screen, wait_for
from test_ui import insert_registry, table_column
from textual.widgets import Static

from console.core.service import ConsoleService
from console.core.tenants.overview import TenantRow
from console.core.tenants.registry import Tenant, TenantStatus
from console.ui.app import GoConsoleApp
from console.ui.tenant_view import COLUMNS, select_rows

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GROWTH = [key for key, _ in COLUMNS].index("growth")
MB = 1024 * 1024
# key -> total bytes a week ago (None: not collected then) and an hour ago
HISTORY = {"acme": (1 * MB, 3 * MB), "bolt": (2 * MB, 2 * MB), "cedar": (None, 5 * MB)}


LATEST = NOW - timedelta(hours=1)
BASELINE = LATEST - timedelta(days=7, minutes=30)


async def write_history(su: asyncpg.Connection) -> None:
    """Two collections of HISTORY (of the tenants registered): at BASELINE and at LATEST."""
    ids = dict(await su.fetch("SELECT key, id FROM public.tenants"))
    rows = [
        (at, ids[key], total)
        for key, (week, hour) in HISTORY.items()
        for at, total in ((BASELINE, week), (LATEST, hour))
        if total is not None and key in ids
    ]
    await su.executemany(
        "INSERT INTO public.schema_stats (collected_at, tenant_id, tables, total_bytes, "
        "estimated_rows) VALUES ($1, $2, 6, $3, 100)",
        rows,
    )


async def test_growth_column_and_detail_line(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await insert_registry(
        su, [("acme", "Acme", "ACTIVE"), ("bolt", "Bolt", "ACTIVE"), ("dune", "Dune", "ACTIVE")]
    )
    await insert_registry(su, [("cedar", "Cedar", "INACTIVE")])
    await write_history(su)
    app = GoConsoleApp(ui_service, clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await tenants_screen(pilot)
        assert screen.shown_keys() == ["acme", "bolt", "cedar", "dune"]
        assert table_column(screen, "#tenant-table", GROWTH) == ["+2.0 MB", "0 B", "—", "—"]

        await pilot.press("enter")  # acme
        detail = await detail_screen(pilot, "acme")
        summary = detail.query_one("#summary", Static)
        await wait_for(pilot, lambda: "size " in str(summary.render()), "the size line")
        assert "size      3.0 MB, +2.0 MB in 7 days" in str(summary.render())


async def test_before_a_week_of_history_there_is_no_growth(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    await insert_registry(su, [("acme", "Acme", "ACTIVE"), ("dune", "Dune", "ACTIVE")])
    await write_history(su)
    # Two days before NOW the newest run is the BASELINE one, with nothing a week before it.
    app = GoConsoleApp(ui_service, clock=lambda: NOW - timedelta(days=2))
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await tenants_screen(pilot)
        assert table_column(screen, "#tenant-table", GROWTH) == ["—", "—"]
        app.open_tenant("dune")
        detail = await detail_screen(pilot, "dune")
        summary = detail.query_one("#summary", Static)
        await wait_for(pilot, lambda: "size " in str(summary.render()), "the size line")
        assert "size      — (no statistics collected yet)" in str(summary.render())


def test_sorting_by_growth_puts_the_unknown_last() -> None:
    def row(key: str) -> TenantRow:
        tenant = Tenant(
            uuid.uuid4(), key, f"tenant_{key}", key, TenantStatus.ACTIVE, "c", NOW, NOW, None
        )
        return TenantRow(tenant, None, None, None)

    rows = [row(k) for k in ("acme", "bolt", "cedar", "dune")]
    growth = {"acme": 5 * MB, "bolt": -MB, "cedar": None, "dune": 0}
    ordered = select_rows(rows, "", None, "growth", False, {}, growth)
    assert [r.tenant.key for r in ordered] == ["bolt", "dune", "acme", "cedar"]
