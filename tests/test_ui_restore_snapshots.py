"""SVG snapshots of the restore form with its plan, and of the typed confirmation that follows,
at 80×24 (pytest-textual-snapshot).

The data is the Backups snapshots' (tests/test_ui_backup_snapshots.py): fixed registry, audit
and catalog rows with fixed ids, times and sizes, and a fixed clock; the catalog rows have no
files, so the plan names no missing one. Restores themselves are tested on real backups in
tests/test_ui_restore.py. Regenerate with
``pytest tests/test_ui_restore_snapshots.py --snapshot-update`` and look at the SVGs first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_ui_backup_snapshots import backups_dsn  # noqa: F401  (the module's fixture)
from test_ui_snapshots import SnapshotApp, on_detail, settle
from textual.pilot import Pilot

from console.ui.screens.prompt import ConfirmDrainScreen
from console.ui.screens.restore import RestoreScreen

pytestmark = pytest.mark.parametrize("pg_cluster", ["pg18"], indirect=True)


async def planned(pilot: Pilot[Any]) -> RestoreScreen:
    """acme_outdoors' restore form, its second-newest backup (an incremental) picked, the plan
    shown."""
    app = pilot.app
    await on_detail(pilot, "acme_outdoors")
    await pilot.press("R")
    form = await wait_for(
        pilot,
        lambda: isinstance(app.screen, RestoreScreen) and app.screen.records and app.screen,
        "the restore form",
    )
    assert isinstance(form, RestoreScreen)
    await pilot.pause()
    form.query_one("#restore-backups").focus()
    await pilot.press("down", "enter")
    await wait_for(pilot, lambda: form.choice is not None, "the plan")
    assert form.plan_text().startswith("Restore acme_outdoors from 2 backup(s):")
    return form


def test_restore_plan_at_80x24(snap_compare, backups_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    """The backups list, the chosen chain, the point it reflects, size and pool."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await planned(pilot)
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(backups_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )


def test_restore_confirmation_at_80x24(snap_compare, backups_dsn: str, tmp_path: Path) -> None:  # noqa: F811
    """Continue: the six steps, the pool's drain timeout and force, the key to type."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await planned(pilot)
        await pilot.click("#continue")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDrainScreen), "the dialog")
        await settle(pilot)

    assert snap_compare(
        SnapshotApp(backups_dsn, tmp_path), terminal_size=(80, 24), run_before=run_before
    )
