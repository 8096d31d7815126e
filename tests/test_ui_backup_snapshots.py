"""SVG snapshots of the Backups screen and a tenant's backup history at 80×24
(pytest-textual-snapshot).

The data is fixed like the other snapshots' (tests/test_ui_snapshots.py): the same registry and
audit rows, plus catalog rows with fixed ids, times and sizes written straight into
``public.backups`` (the tenants have no schemas to back up, and real backups' times and sizes
differ from run to run); the app's clock is fixed. The behaviour behind these screens is tested
on real backups in tests/test_ui_backups.py. Regenerate with
``pytest tests/test_ui_backup_snapshots.py --snapshot-update`` and look at the SVGs first.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import tenants_screen, wait_for
from test_ui_snapshots import NOW, SnapshotApp, fixed_database, settle, write_fixed_data
from textual.pilot import Pilot

from console.devenv.postgres import LocalCluster
from console.ui.screens.backup_history import BackupHistoryScreen
from console.ui.screens.backups import BackupsScreen

pytestmark = pytest.mark.parametrize("pg_cluster", ["pg18"], indirect=True)

MB = 2**20
# tenant, kind, hours before NOW it finished, stored MB, raw MB, status, verify level or None,
# error: each tenant's incrementals chain on its previous row
BACKUPS: list[tuple[str, str, float, float, float, str, str | None, str | None]] = [
    ("acme_outdoors", "full", 58, 44.0, 150.0, "succeeded", "restore", None),
    ("acme_outdoors", "incremental", 54, 2.1, 7.9, "succeeded", None, None),
    ("acme_outdoors", "full", 10, 48.0, 160.0, "succeeded", "restore", None),
    ("acme_outdoors", "incremental", 6, 1.5, 5.5, "succeeded", None, None),
    ("acme_outdoors", "incremental", 2, 2.5, 9.0, "succeeded", "checksum", None),
    ("alpine_gear", "full", 75, 12.0, 40.0, "succeeded", "checksum", None),
    ("bolt_bikes", "full", 20, 8.0, 30.0, "succeeded", None, None),
    ("bolt_bikes", "incremental", 1, 0.0, 0.0, "failed", None, "pg_dump: connection lost"),
    ("cedar_crafts", "full", 130, 5.0, 17.0, "succeeded", "restore", None),
    ("fjord_fashion", "full", 960, 3.0, 9.0, "succeeded", "restore", None),
]


def backup_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-a000-{n:012d}")


async def write_backups(conn: asyncpg.Connection) -> None:
    """The fixed catalog rows of BACKUPS."""
    parents: dict[str, uuid.UUID] = {}
    for n, (key, kind, hours, stored, raw, status, level, error) in enumerate(BACKUPS, 1):
        finished = NOW - timedelta(hours=hours)
        started = finished - timedelta(minutes=2)
        await conn.execute(
            "INSERT INTO public.backups (id, tenant_id, kind, parent_id, started_at, "
            "finished_at, status, bytes, raw_bytes, encrypted, compressed, covers_until, "
            "duration_ms, verified_at, verify_result, verify_level, error) "
            "SELECT $1, id, $3, $4, $5, $6, $7, $8, $9, true, true, $5, 120000, "
            "$10, $11, $12, $13 FROM public.tenants WHERE key = $2",
            backup_id(n),
            key,
            kind,
            parents.get(key) if kind == "incremental" else None,
            started,
            finished,
            status,
            round(stored * MB) if status == "succeeded" else None,
            round(raw * MB) if status == "succeeded" else None,
            finished + timedelta(minutes=30) if level else None,
            "ok" if level else None,
            level,
            error,
        )
        if status == "succeeded":
            parents[key] = backup_id(n)


@pytest.fixture(scope="module")
async def backups_dsn(
    pg_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One initialized database holding the fixed registry, audit and catalog rows."""
    backups = tmp_path_factory.mktemp("backups")
    async with fixed_database(pg_cluster, backups, "snapb", write_fixed_data, write_backups) as dsn:
        yield dsn


async def on_backups(pilot: Pilot[Any]) -> BackupsScreen:
    app = pilot.app
    await tenants_screen(pilot)
    await pilot.press("b")
    found = await wait_for(
        pilot,
        lambda: isinstance(app.screen, BackupsScreen) and app.screen.loaded and app.screen,
        "the backups screen to load",
    )
    assert isinstance(found, BackupsScreen)
    return found


def test_backups_screen_at_80x24(snap_compare, backups_dsn: str, tmp_path: Path) -> None:
    """OK, STALE, FAILED, NEVER in words; ages, sizes, ratios, verified levels, chains; the
    cursor tenant's reason on the line above the table."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await on_backups(pilot)
        assert [screen.state_of(k) for k in screen.shown_keys()[:6]] == [
            "OK",
            "STALE",
            "FAILED",
            "STALE",
            "NEVER",
            "NEVER",
        ]
        await pilot.press("down")  # alpine_gear: why it is STALE
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(backups_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )


def test_backup_history_at_80x24(snap_compare, backups_dsn: str, tmp_path: Path) -> None:
    """acme_outdoors' history: the size chart (two chains) and the table, newest first."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await on_backups(pilot)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, BackupHistoryScreen) and app.screen.loaded,
            "acme_outdoors' history",
        )
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(backups_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )
