"""The console with a big registry: first paint, filter latency and idle CPU, headless.

    .venv/bin/python bench/ui.py [--tenants 100000] [--idle 20] [--pg-bin DIR] [--profile FILE]

Starts a throwaway cluster, runs init, inserts the registry rows directly (no schemas: the
registry and the catalog query are what the tenants screen reads), then drives the real app
under ``App.run_test`` (headless) and prints:

* first paint: from app start until the first screen update written after the tenants screen
  has loaded and its table has rows;
* filter: from a keystroke handed to the app (as the terminal driver does) until the first
  screen update written after the table changed (each keystroke changes the rows shown),
  median and worst of a dozen;
* idle CPU: this process's CPU time (``time.process_time``) over wall time while the console
  sits on the tenants screen at the default refresh interval, as % of one core.

``--profile FILE`` writes a cProfile of the idle phase (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import asyncpg
from rich.console import RenderableType
from textual import events
from textual.screen import Screen
from textual.widgets import DataTable

from console.config import BackupSettings, Settings
from console.core.binaries import PgBinaries
from console.core.service import ConsoleService
from console.devenv.postgres import LocalCluster, throwaway_cluster
from console.ui.app import GoConsoleApp
from console.ui.screens.tenants import TenantsScreen

TARGET_FIRST_PAINT_S = 1.5
TARGET_FILTER_S = 0.100
TARGET_IDLE_CPU_PCT = 3.0
# Each keystroke changes the rows shown (from the first page of all tenants and back).
KEYSTROKES = ["4", "2", "1", "7", "backspace", "backspace", "backspace", "backspace"]
KEYSTROKES += ["9", "9", "backspace", "backspace"]


async def fill_registry(dsn: str, tenants: int) -> None:
    """``tenants`` ACTIVE registry rows t000001, t000002, ... in one statement."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO public.tenants (key, schema_name, display_name, status) "
            "SELECT k, 'tenant_' || k, 'Tenant ' || i, 'ACTIVE' "
            "FROM generate_series(1, $1::int) AS i, "
            "LATERAL (SELECT 't' || lpad(i::text, 6, '0')) AS x(k)",
            tenants,
        )
        await conn.execute("ANALYZE public.tenants")
    finally:
        await conn.close()


class PaintClock:
    """Times of the app's screen updates (wraps ``App._display``, which writes each update)."""

    def __init__(self, app: GoConsoleApp) -> None:
        self.times: list[float] = []
        display = app._display

        def timed(screen: Screen[object], renderable: RenderableType | None) -> None:
            display(screen, renderable)
            self.times.append(time.perf_counter())

        app._display = timed  # type: ignore[method-assign]

    async def painted_after(self, moment: float, deadline: float) -> float:
        """When the first screen update after ``moment`` was written."""
        while True:
            later = [t for t in self.times[-5:] if t >= moment]
            if later:
                return later[0]
            if time.perf_counter() > deadline:
                raise RuntimeError("no screen update")
            await asyncio.sleep(0.001)


async def measure(
    service: ConsoleService, tenants: int, idle_s: float, profile: Path | None
) -> dict[str, float]:
    """Drive the app; return the figures."""
    app = GoConsoleApp(service)
    paints = PaintClock(app)
    started = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = started + 120

        def loaded() -> bool:
            screen = app.screen
            return (
                isinstance(screen, TenantsScreen)
                and screen.loaded
                and screen.query_one("#tenant-table", DataTable).row_count > 0
            )

        while not loaded():
            if time.perf_counter() > deadline:
                raise RuntimeError("the tenants screen did not load within 120 s")
            await asyncio.sleep(0.001)
        first_paint = await paints.painted_after(time.perf_counter(), deadline) - started
        screen = app.screen
        assert isinstance(screen, TenantsScreen)
        if screen.view_size() != tenants:
            raise RuntimeError(f"expected {tenants} tenants, the screen has {screen.view_size()}")

        await pilot.press("slash")
        await pilot.pause(1.0)  # the sizes refresh that follows the first paint
        filter_times: list[float] = []
        driver = app._driver
        assert driver is not None
        for key in KEYSTROKES:
            before = screen.shown_keys()
            event = events.Key(key, None if len(key) > 1 else key)
            t0 = time.perf_counter()
            driver.send_message(event)  # what the terminal driver does for a keypress
            while screen.shown_keys() == before:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"keystroke {key!r} did not change the table")
                await asyncio.sleep(0.001)
            changed = time.perf_counter()
            filter_times.append(await paints.painted_after(changed, changed + 30) - t0)
            await pilot.pause()
        await pilot.press("enter")  # back to the table, filter empty again
        await pilot.pause(1.0)

        profiler = cProfile.Profile() if profile else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        await asyncio.sleep(idle_s)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    return {
        "first_paint": first_paint,
        "filter_median": statistics.median(filter_times),
        "filter_max": max(filter_times),
        "idle_cpu": idle_cpu,
    }


async def run(
    cluster: LocalCluster, tenants: int, idle_s: float, work: Path, profile: Path | None
) -> None:
    """Set up the database, measure, print."""
    admin = await asyncpg.connect(cluster.dsn())
    await admin.execute("CREATE DATABASE bench")
    await admin.close()
    settings = dataclasses.replace(Settings(), backup=BackupSettings(dir=str(work / "backups")))
    async with ConsoleService(settings, dsn=cluster.dsn("bench")) as service:
        await service.init()
        await fill_registry(cluster.dsn("bench"), tenants)
        figures = await measure(service, tenants, idle_s, profile)
    interval = settings.ui.refresh_interval
    print(f"PostgreSQL {cluster.binaries.major_version()}, {tenants:,} registry rows, headless")
    rows = [
        ("first paint of the tenants screen", figures["first_paint"] * 1000, "ms",
         TARGET_FIRST_PAINT_S * 1000),
        (f"filter keystroke -> table (median of {len(KEYSTROKES)})",
         figures["filter_median"] * 1000, "ms", TARGET_FILTER_S * 1000),
        ("filter keystroke -> table (worst)", figures["filter_max"] * 1000, "ms", None),
        (f"idle CPU, refresh every {interval:g} s, {idle_s:g} s", figures["idle_cpu"], "%",
         TARGET_IDLE_CPU_PCT),
    ]  # fmt: skip
    for label, value, unit, target in rows:
        verdict = "" if target is None else ("ok" if value < target else "MISSED")
        goal = "" if target is None else f"< {target:g} {unit}"
        print(f"  {label:<48} {value:8.1f} {unit:<3} {goal:<10} {verdict}")
    if profile:
        print(f"idle-phase profile written to {profile}")


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measurement")
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the idle phase here")
    args = parser.parse_args()
    if not 1 <= args.tenants <= 999_999:
        parser.error("--tenants must be between 1 and 999999 (keys are t + 6 digits)")
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    with throwaway_cluster(binaries, {"max_connections": "100"}, "goconsole-bench-") as (
        cluster,
        work,
    ):
        asyncio.run(run(cluster, args.tenants, args.idle, work, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
