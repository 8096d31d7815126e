"""SVG snapshots of the console's main screens at 80×24 and 160×48 (pytest-textual-snapshot).

The data is fixed: registry rows with fixed ids, keys, names and creation times, and audit rows
with fixed timestamps and actors, written straight into the registry (no tenant schemas, so the
size columns show a dash), and statistics history rows of a week before (the Growth 7d column);
the app's clock is fixed too. Only PostgreSQL 18 runs them, so there
is one snapshot set. ``snap_compare`` runs the app in its own event loop, so every test hands the
app a fresh, unopened ConsoleService, which the app opens on mount and which is closed when the
app ends. Regenerate with ``pytest tests/test_ui_snapshots.py --snapshot-update`` and look at the
SVGs before committing them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from helpers import tenants_screen, wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

import console.ui.app as app_module
from console.config import BackupSettings, PgBouncerSettings, SchedulerSettings, Settings
from console.core.pools.include_file import HEADER, Alias
from console.core.scheduler.service import SchedulerService
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import LocalCluster
from console.ui.app import GoConsoleApp
from console.ui.screens.audit import AuditScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.jobs import JobsScreen, RunDetailScreen
from console.ui.screens.pool_forms import PoolSizeScreen
from console.ui.screens.pools import PoolsScreen
from console.ui.screens.prompt import ConfirmKeyScreen
from console.ui.screens.provision import ProvisionScreen
from console.ui.screens.tenant_detail import TenantDetailScreen

# One PostgreSQL version only: one set of snapshots (the conftest cluster, pinned to pg18).
pytestmark = pytest.mark.parametrize("pg_cluster", ["pg18"], indirect=True)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
AUDIT_START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

# key, display name, status, config
TENANTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("acme_outdoors", "Acme Outdoors", "ACTIVE", {"plan": "gold", "region": "eu-west"}),
    ("alpine_gear", "Alpine Gear Co.", "ACTIVE", {"plan": "silver"}),
    ("bolt_bikes", "Bolt Bikes", "ACTIVE", {}),
    ("cedar_crafts", "Cedar Crafts", "INACTIVE", {"plan": "bronze"}),
    ("delta_foods", "Delta Foods", "INITIALIZING", {}),
    ("echo_media", "Echo Media", "FAILED", {}),
    ("fjord_fashion", "Fjord Fashion", "ARCHIVED", {}),
    ("granite_tools", "Granite Tools", "ACTIVE", {}),
    ("harbor_books", "Harbor Books", "DEACTIVATING", {}),
    ("iris_optics", "Iris Optics", "ACTIVE", {}),
    ("juniper_tea", "Juniper Tea", "OFFBOARDING", {}),
    ("kestrel_sports", "Kestrel Sports", "ACTIVE", {}),
    ("lumen_lighting", "Lumen Lighting", "ACTIVE", {}),
    ("maple_home", "Maple Home & Garden", "ACTIVE", {}),
    ("nimbus_cloudware", "Nimbus Cloudware", "INACTIVE", {}),
    ("orchid_beauty", "Orchid Beauty", "ACTIVE", {}),
    ("pioneer_pets", "Pioneer Pets", "ACTIVE", {}),
    ("quartz_jewels", "Quartz Jewels", "ACTIVE", {}),
    ("river_outfitters", "River Outfitters", "ACTIVE", {}),
    ("summit_coffee", "Summit Coffee Roasters", "ACTIVE", {}),
    ("tidal_surf", "Tidal Surf Shop", "ACTIVE", {}),
    ("umber_pottery", "Umber Pottery", "INACTIVE", {}),
    ("vertex_audio", "Vertex Audio", "ACTIVE", {}),
    ("willow_kids", "Willow Kids", "ACTIVE", {}),
]
# tenant key (None: cluster-wide), action, minutes after 2026-11-20 09:00 UTC, details
AUDIT: list[tuple[str | None, str, int, dict[str, Any]]] = [
    (None, "init.control_schema", 0, {"revision": "0001"}),
    (None, "init.app_role", 1, {"role": "verified"}),
    (None, "init.template", 2, {"revision": "0001"}),
    *(
        (key, f"provision.{step}", 10 + n * 5 + i, {"step": step})
        for n, key in enumerate(("acme_outdoors", "bolt_bikes", "cedar_crafts"))
        for i, step in enumerate(("register", "schema", "init_data", "verify", "activate"))
    ),
    ("cedar_crafts", "deactivate.backup", 600, {"bytes": 48213, "sha256": "ab12" * 16}),
    ("cedar_crafts", "deactivate.block", 601, {}),
    ("cedar_crafts", "deactivate.drain", 602, {"waited_s": 0.2}),
    ("cedar_crafts", "deactivate.finalize", 603, {}),
    ("acme_outdoors", "deactivate.backup", 1440, {"error": "pg_dump: connection lost"}),
    ("acme_outdoors", "reactivate.grant", 1500, {}),
]

# Statistics history (the Growth 7d column): key, total bytes a week before, an hour before NOW.
STATS: list[tuple[str, int, int]] = [
    ("acme_outdoors", 41_000_000, 48_500_000),
    ("alpine_gear", 9_200_000, 9_200_000),
    ("bolt_bikes", 130_000_000, 126_400_000),
]


# The scheduler's history: job, minutes before NOW it was due (None: run by hand), trigger,
# outcome, seconds it took, summary, per-tenant failures.
JOB_RUNS: list[tuple[str, int | None, str, str, int, str, dict[str, str]]] = [
    ("health_check", 1, "schedule", "succeeded", 1, "WARN: 11 check(s)", {}),
    ("schema_stats", 60, "schedule", "succeeded", 4, "24 tenant(s), 3 collected", {}),
    (
        "incremental_backup",
        120,
        "schedule",
        "failed",
        95,
        "13 of 15 tenant(s) backed up",
        {"echo_media": "pg_dump: connection lost", "iris_optics": "disk full"},
    ),
    ("purge_replaced", None, "manual", "succeeded", 0, "0 replaced schema(s) dropped", {}),
    ("restore_drill", 480, "schedule", "missed", 0, "no scheduler led the cluster", {}),
    ("full_backup", 600, "catch-up", "succeeded", 1800, "15 of 15 tenant(s) backed up", {}),
]


def run_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-a000-{n:012d}")


def tenant_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def audit_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-9000-{n:012d}")


def snapshot_settings(backups: Path) -> Settings:
    """Backups in ``backups``; the console hosts no scheduler (the header says ``sched: off``)."""
    return dataclasses.replace(
        Settings(),
        backup=BackupSettings(dir=str(backups)),
        scheduler=SchedulerSettings(enabled=False),
    )


async def write_fixed_data(conn: asyncpg.Connection) -> None:
    """Replace init's audit rows by the fixed ones and register the fixed tenants."""
    ids = {key: tenant_id(n) for n, (key, *_) in enumerate(TENANTS, 1)}
    async with conn.transaction():
        # init stamped its audit rows with the real time. The log refuses DELETE through its
        # triggers, which replica mode skips (test data only, in this transaction only).
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM public.tenant_audit_log")
        await conn.executemany(
            "INSERT INTO public.tenants "
            "(id, key, schema_name, display_name, status, created_at, updated_at, config) "
            "VALUES ($1, $2, 'tenant_' || $2, $3, $4::tenant_status, $5, $5, $6::jsonb)",
            [
                (ids[key], key, name, status, CREATED + timedelta(days=n), json.dumps(config))
                for n, (key, name, status, config) in enumerate(TENANTS)
            ],
        )
        await conn.executemany(
            "INSERT INTO public.tenant_audit_log (id, tenant_id, action_type, "
            "action_timestamp, actor, actor_host, actor_address, details) "
            "VALUES ($1, $2, $3, $4, 'ops', 'bastion-1', $5, $6::jsonb)",
            [
                (
                    audit_id(n),
                    ids[key] if key else None,
                    action,
                    AUDIT_START + timedelta(minutes=minutes),
                    "10.0.0.7" if n % 2 else "local",
                    json.dumps(details),
                )
                for n, (key, action, minutes, details) in enumerate(AUDIT, 1)
            ],
        )
        await conn.executemany(
            "INSERT INTO public.schema_stats (collected_at, tenant_id, tables, total_bytes, "
            "estimated_rows) VALUES ($1, $2, 6, $3, 1000)",
            [
                (at, ids[key], total)
                for key, week, hour in STATS
                for at, total in (
                    (NOW - timedelta(days=7, hours=1), week),
                    (NOW - timedelta(hours=1), hour),
                )
            ],
        )
        await conn.executemany(
            "INSERT INTO job_runs (id, job, scheduled_at, started_at, finished_at, outcome, "
            "trigger, host, leader, failures, summary) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, 'bastion-1', 'ops@bastion-1', $8::jsonb, $9)",
            [
                (
                    run_id(n),
                    job,
                    None if due is None else NOW - timedelta(minutes=due),
                    NOW - timedelta(minutes=due or 30),
                    NOW - timedelta(minutes=due or 30) + timedelta(seconds=took),
                    outcome,
                    trigger,
                    json.dumps(failures),
                    summary,
                )
                for n, (job, due, trigger, outcome, took, summary, failures) in enumerate(
                    JOB_RUNS, 1
                )
            ],
        )


@asynccontextmanager
async def fixed_database(
    pg_cluster: LocalCluster,
    backups: Path,
    prefix: str,
    *writers: Callable[[asyncpg.Connection], Awaitable[None]],
) -> AsyncIterator[str]:
    """A new initialised database filled by ``writers`` (the snapshot tests only read it),
    dropped afterwards; yields its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_cluster.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = pg_cluster.dsn(name)
    async with ConsoleService(snapshot_settings(backups), dsn=dsn) as service:
        await service.init()
    conn = await asyncpg.connect(dsn)
    try:
        for write in writers:
            await write(conn)
    finally:
        await conn.close()
    yield dsn
    admin = await asyncpg.connect(pg_cluster.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def snapshot_dsn(
    pg_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One initialized database holding the fixed data (the snapshot tests only read it)."""
    backups = tmp_path_factory.mktemp("backups")
    async with fixed_database(pg_cluster, backups, "snap", write_fixed_data) as dsn:
        yield dsn


class SnapshotApp(GoConsoleApp):
    """The console with a fixed clock, closing its service when it ends (in its own loop)."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def __init__(self, dsn: str, backups: Path, bouncer: PgBouncerSettings | None = None) -> None:
        settings = snapshot_settings(backups)
        if bouncer is not None:
            settings = dataclasses.replace(settings, pgbouncer=bouncer)
        super().__init__(ConsoleService(settings, dsn=dsn), clock=lambda: NOW)

    async def run_async(self, **kwargs: Any) -> int | None:
        try:
            return await super().run_async(**kwargs)
        finally:
            await self.service.close()


async def settle(pilot: Pilot[Any]) -> None:
    """Make the next paint depend on the data only, not on timing.

    Text cursors stop blinking (the blink phase is timing). Textual 8's DataTable caches cells
    rendered before its idle-time column measurement (under load a paint can land in between,
    leaving columns at their header widths), so every table drops its render caches.
    """
    app = pilot.app
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()
    for screen in app.screen_stack:
        for table in screen.query(DataTable):
            table.notify_style_update()
    await pilot.pause()


async def on_detail(pilot: Pilot[Any], key: str) -> TenantDetailScreen:
    app = pilot.app
    await tenants_screen(pilot)
    app.open_tenant(key)  # type: ignore[attr-defined]

    def loaded() -> bool:
        screen = app.screen
        return (
            isinstance(screen, TenantDetailScreen)
            and screen.detail is not None
            and screen.query_one("#detail-audit", DataTable).row_count > 0
        )

    await wait_for(pilot, loaded, f"the detail view of {key}")
    assert isinstance(app.screen, TenantDetailScreen)
    return app.screen


# -- the screens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_tenants_screen(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """The registry table: status symbol and word, dashes for schema figures."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await tenants_screen(pilot)
        assert screen.view_size() == len(TENANTS)
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_tenants_filtered(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """Filter as you type: "out" matches acme_outdoors (name) and river_outfitters."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await tenants_screen(pilot)
        await pilot.press("slash", *"out")
        assert screen.shown_keys() == ["acme_outdoors", "river_outfitters"]
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_tenant_detail(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """One tenant: registry row, config, (no) tables, recent audit, available actions."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await on_detail(pilot, "acme_outdoors")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_audit_screen(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """The audit log, newest first."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await tenants_screen(pilot)
        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded,
            "the audit screen to load",
        )
        assert isinstance(app.screen, AuditScreen)
        assert len(app.screen.shown_actions()) == len(AUDIT)
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_provision_form(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """The provision form refusing a key as it is typed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await tenants_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvisionScreen), "the form")
        await pilot.press(*"Nova-Shop")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_typed_confirmation(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """Deactivate: what will happen, and the key to type (a wrong one was entered)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await on_detail(pilot, "acme_outdoors")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKeyScreen), "the dialog")
        await pilot.press(*"acme", "enter")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, snapshot_dsn: str, tmp_path: Path, size) -> None:
    """? on the tenants screen: keys, actions and binding ids."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await tenants_screen(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=size, run_before=run_before
    )


def test_jobs_screen_at_80x24(snap_compare, snapshot_dsn: str, tmp_path: Path) -> None:
    """The schedule (next runs from the fixed clock), the leader line and the history."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        service = app.service  # type: ignore[attr-defined]
        service.scheduler = SchedulerService(service, clock=lambda: NOW)
        await tenants_screen(pilot)
        await pilot.press("j")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, JobsScreen) and len(app.screen.shown_runs()) == len(JOB_RUNS)
            ),
            "the jobs screen",
        )
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )


def test_run_detail_at_80x24(snap_compare, snapshot_dsn: str, tmp_path: Path) -> None:
    """Enter on a failed run: its record and each tenant that failed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await tenants_screen(pilot)
        await pilot.press("j")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, JobsScreen) and len(app.screen.shown_runs()) == len(JOB_RUNS)
            ),
            "the jobs screen",
        )
        await pilot.pause()
        await pilot.press("tab", "down", "down", "down", "enter")  # the failed incremental
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the detail")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )


# Pools of registered tenants (alias -> pool size, reserve): idle, so every figure is fixed once
# two polls gave rates; one paused and one disabled for the state words. The sparklines span an
# hour, so the few seconds of samples all fall on their last column.
POOL_SIZES = {
    "acme_outdoors": (20, 5),
    "alpine_gear": (10, 2),
    "bolt_bikes": (5, 0),
    "granite_tools": (20, 5),
    "iris_optics": (8, 2),
    "kestrel_sports": (15, 3),
}


def bouncer_admin(bouncer: LocalPgBouncer, *commands: str) -> None:
    with psycopg.connect(bouncer.admin_dsn, autocommit=True, prepare_threshold=None) as admin:
        for command in commands:
            admin.execute(command.encode())


@pytest.fixture
def snapshot_bouncer(
    pgbouncer: LocalPgBouncer, pg_cluster: LocalCluster, snapshot_dsn: str
) -> Iterator[PgBouncerSettings]:
    """The module's PgBouncer with fixed tenant aliases into the snapshot database."""
    include = pgbouncer.include_file
    assert include is not None
    dbname = snapshot_dsn.rsplit("/", 1)[1]
    lines = [
        Alias(f"tenant_{key}", "127.0.0.1", pg_cluster.port, dbname, size, reserve).line()
        for key, (size, reserve) in POOL_SIZES.items()
    ]
    include.write_text(HEADER.format(path=include) + "\n".join(lines) + "\n")
    bouncer_admin(pgbouncer, "RELOAD", "PAUSE tenant_bolt_bikes", "DISABLE tenant_iris_optics")
    try:
        yield PgBouncerSettings(
            admin_dsn=pgbouncer.admin_dsn, include_file=str(include), history_minutes=60
        )
    finally:
        bouncer_admin(pgbouncer, "RESUME tenant_bolt_bikes", "ENABLE tenant_iris_optics")
        include.write_text(HEADER.format(path=include))
        bouncer_admin(pgbouncer, "RELOAD")


async def on_pools(pilot: Pilot[Any]) -> None:
    """The pools screen once every pool shows with its rates (two polls)."""
    app = pilot.app
    await tenants_screen(pilot)
    await pilot.press("p")

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, PoolsScreen)
            and screen.snapshot is not None
            and len(screen.shown_aliases()) == len(POOL_SIZES)
            and all(p.rates is not None for p in screen.snapshot.pools)
        )

    await wait_for(pilot, ready, "the pools with their rates")


def test_pools_screen(
    snap_compare, snapshot_dsn: str, snapshot_bouncer: PgBouncerSettings, tmp_path: Path
) -> None:
    """Gauges, state words, totals against the limits and (flat) sparklines with their titles
    and units; 160×48."""
    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path, snapshot_bouncer),
        terminal_size=(160, 48),
        run_before=settled_pools,
    )


def test_pools_screen_at_80x24(
    snap_compare, snapshot_dsn: str, snapshot_bouncer: PgBouncerSettings, tmp_path: Path
) -> None:
    """The same at 80×24: the sparklines keep their titles and units."""
    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path, snapshot_bouncer),
        terminal_size=(80, 24),
        run_before=settled_pools,
    )


async def settled_pools(pilot: Pilot[Any]) -> None:
    await on_pools(pilot)
    await settle(pilot)


def test_pools_default_size_dialog_at_80x24(
    snap_compare, snapshot_dsn: str, snapshot_bouncer: PgBouncerSettings, tmp_path: Path
) -> None:
    """The default-size dialog's title is whole at 80×24."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await on_pools(pilot)
        await pilot.press("D")
        await wait_for(
            pilot, lambda: isinstance(pilot.app.screen, PoolSizeScreen), "the default-size dialog"
        )
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path, snapshot_bouncer),
        terminal_size=(80, 24),
        run_before=run_before,
    )


def test_pools_not_configured_at_80x24(snap_compare, snapshot_dsn: str, tmp_path: Path) -> None:
    """The "not configured" box fits the width (its text wraps)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await tenants_screen(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PoolsScreen), "the pools screen")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(snapshot_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )
