"""Health checks and the Health screen against real clusters: a real streaming standby
(pg_basebackup -R) whose lag rises with replay paused, crosses warn and crit and recovers; a
stopped standby reported missing; a cluster that goes away and comes back (checks and screen);
samples, retention, backup freshness with an injected clock; ``goconsole health`` exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import CLUSTER_SETTINGS, ServiceFactory
from helpers import fast, tenants_screen, wait_for, wait_until
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from console.config import HealthSettings, Settings
from console.core.backups.catalog import BackupKind
from console.core.health.model import HealthReport, State
from console.core.service import ConsoleService
from console.devenv.postgres import LocalCluster, server_os_user
from console.ui.app import GoConsoleApp
from console.ui.screens.health import HealthScreen

SLOT = "health_test_slot"
STANDBY_NAME = "standby_one"
LAG = HealthSettings(
    replication_lag_warn_bytes=2 * 1024 * 1024,
    replication_lag_crit_bytes=6 * 1024 * 1024,
    replication_lag_warn_s=3600,
    replication_lag_crit_s=7200,
    expected_standbys=1,
)


@dataclasses.dataclass
class Standby:
    """A streaming standby of the test cluster, on its own port, fed through slot SLOT."""

    cluster: LocalCluster
    dbname: str

    def dsn(self) -> str:
        return self.cluster.dsn(self.dbname)


@pytest.fixture
def standby_dir() -> Iterator[Path]:
    """A folder the server's OS user owns, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="goconsole-standby-"))
    owner = server_os_user()
    if owner is not None:
        shutil.chown(work, owner, owner)
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
async def standby(
    pg_cluster: LocalCluster, service: ConsoleService, database_dsn: str, standby_dir: Path
) -> AsyncIterator[Standby]:
    """``pg_basebackup -R -C -S SLOT`` of the test cluster (after ``service`` initialised the
    test database), started as a hot standby; stopped and its slot dropped afterwards."""
    data = standby_dir / "data"
    subprocess.run(
        [
            str(pg_cluster.binaries.tool("pg_basebackup")),
            "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
            "-D", str(data), "-R", "-C", "-S", SLOT, "-X", "stream", "-c", "fast", "--no-sync",
        ],
        user=server_os_user(),
        cwd="/",
        check=True,
        capture_output=True,
    )  # fmt: skip
    cluster = LocalCluster(
        data,
        pg_cluster.binaries,
        settings={**CLUSTER_SETTINGS, "hot_standby": "on", "cluster_name": STANDBY_NAME},
    )
    try:
        cluster.start()
        yield Standby(cluster, database_dsn.rsplit("/", 1)[1])
    finally:
        cluster.stop("immediate")
        admin = await asyncpg.connect(pg_cluster.dsn())
        try:

            async def dropped() -> bool:
                return bool(
                    await admin.fetchval(
                        "SELECT count(pg_drop_replication_slot(slot_name)) >= 0 "
                        "FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                        SLOT,
                    )
                ) and not await admin.fetchval(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", SLOT
                )

            await wait_until(dropped, "the standby's slot to be dropped")
        finally:
            await admin.close()


def _with(settings: Settings, health: HealthSettings) -> Settings:
    return dataclasses.replace(settings, health=health)


async def _state(svc: ConsoleService, name: str) -> tuple[HealthReport, State | None]:
    report = await svc.health.check()
    check = report.check(name)
    return report, None if check is None else check.state


async def test_lag_rises_with_replay_paused_crosses_warn_and_crit_then_recovers(
    make_service: ServiceFactory, settings: Settings, standby: Standby, su: asyncpg.Connection
) -> None:
    primary = await make_service(settings=_with(settings, LAG))
    on_standby = ConsoleService(_with(settings, LAG), dsn=standby.dsn())
    await on_standby.open()
    name = f"standby {STANDBY_NAME}"
    standby_conn = await asyncpg.connect(standby.dsn())
    try:

        async def streaming() -> bool:
            return (await _state(primary, name))[1] is State.OK

        await wait_until(streaming, "the standby to stream, caught up")
        report = await primary.health.check()
        assert report.check("replication").state is State.OK  # type: ignore[union-attr]
        assert report.check("replication").shown == "1 streaming"  # type: ignore[union-attr]

        await standby_conn.execute("SELECT pg_wal_replay_pause()")
        await su.execute("CREATE TABLE load (filler text)")
        seen: list[State] = []

        async def written_until_crit() -> bool:
            await su.execute(
                "INSERT INTO load SELECT repeat(md5(g::text), 16) FROM generate_series(1, 1500) g"
            )
            _, state = await _state(primary, name)
            assert state is not None
            if not seen or seen[-1] is not state:
                seen.append(state)
            return state is State.CRIT

        await wait_until(written_until_crit, "replay lag to cross the crit threshold")
        assert seen == [State.OK, State.WARN, State.CRIT]

        standby_report = await on_standby.health.check(record=True)
        assert standby_report.check("role").shown == "standby"  # type: ignore[union-attr]
        replication = standby_report.check("replication")
        assert replication is not None and replication.state is State.CRIT
        assert "replay paused" in replication.detail or "pause requested" in replication.detail
        assert not standby_report.recorded and "read-only" in standby_report.notes[0]

        await standby_conn.execute("SELECT pg_wal_replay_resume()")

        async def recovered() -> bool:
            return (await _state(primary, name))[1] is State.OK

        await wait_until(recovered, "the standby to catch up after replay resumed")
        back = await on_standby.health.check()
        assert back.check("replication").state is State.OK  # type: ignore[union-attr]
    finally:
        await standby_conn.close()
        await on_standby.close()


async def test_stopped_standby_is_missing_and_an_unreachable_cluster_recovers(
    make_service: ServiceFactory, settings: Settings, standby: Standby
) -> None:
    primary = await make_service(settings=_with(settings, LAG))
    on_standby = ConsoleService(_with(settings, LAG), dsn=standby.dsn())
    await on_standby.open()
    try:

        async def streaming() -> bool:
            report = await primary.health.check()
            return report.check("replication").shown == "1 streaming"  # type: ignore[union-attr]

        await wait_until(streaming, "the standby to stream")
        assert (await on_standby.health.check()).check("connectivity").state is State.OK  # type: ignore[union-attr]

        standby.cluster.stop("immediate")
        report = await primary.health.check()
        replication = report.check("replication")
        assert replication is not None and replication.state is State.CRIT
        assert replication.shown == "1 of 1 standby(s) missing"
        assert SLOT in replication.detail
        slot = report.check(f"slot {SLOT}")
        assert slot is not None and slot.state is State.WARN and "inactive" in slot.detail

        down = await on_standby.health.check()
        connectivity = down.check("connectivity")
        assert down.state is State.CRIT
        assert connectivity is not None and connectivity.state is State.CRIT
        assert f"127.0.0.1:{standby.cluster.port}" in connectivity.detail
        assert down.check("backups").state is State.UNKNOWN  # type: ignore[union-attr]

        standby.cluster.start()

        async def answered() -> bool:
            check = (await on_standby.health.check()).check("connectivity")
            return check is not None and check.state is State.OK

        await wait_until(answered, "the standby's checks to recover by themselves")
        await wait_until(streaming, "the standby to stream again")
    finally:
        await on_standby.close()


async def test_checks_on_a_primary_without_standbys(service: ConsoleService) -> None:
    report = await service.health.check()
    names = [c.name for c in report.checks]
    for expected in (
        "connectivity",
        "role",
        "uptime",
        "connections",
        "idle_in_transaction",
        "longest_query",
        "blocked",
        "wraparound",
        "replication",
        "pgbouncer",
        "backups",
        "scheduler",
    ):
        assert expected in names
    assert report.check("role").shown == "primary"  # type: ignore[union-attr]
    assert report.check("replication").shown == "no standbys"  # type: ignore[union-attr]
    assert report.check("pgbouncer").shown == "not configured"  # type: ignore[union-attr]
    scheduler = report.check("scheduler")
    assert scheduler is not None
    assert (scheduler.state, scheduler.shown) == (State.WARN, "no leader")
    assert "scheduled jobs do not run" in scheduler.detail
    assert json.loads(json.dumps(report.as_json()))["groups"]["jobs"] == "WARN"


async def test_idle_in_transaction_and_blocked_sessions_cross_their_thresholds(
    make_service: ServiceFactory, settings: Settings, database_dsn: str, su: asyncpg.Connection
) -> None:
    health = HealthSettings(
        idle_in_transaction_warn_s=0, idle_in_transaction_crit_s=3600, blocked_warn=1
    )
    svc = await make_service(settings=_with(settings, health))
    await svc.init()
    assert (await svc.health.check()).check("blocked").state is State.OK  # type: ignore[union-attr]
    await su.execute("CREATE TABLE t (x int)")
    holder = await asyncpg.connect(database_dsn)
    waiter = await asyncpg.connect(database_dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("LOCK TABLE t")
    task = asyncio.ensure_future(waiter.execute("BEGIN; LOCK TABLE t"))
    try:

        async def waiting() -> bool:
            report = await svc.health.check()
            check = report.check("blocked")
            return check is not None and check.state is State.WARN

        await wait_until(waiting, "the lock wait to be reported")
        idle = (await svc.health.check()).check("idle_in_transaction")
        assert idle is not None and idle.state is State.WARN and "oldest" in idle.shown
    finally:
        await tx.rollback()
        await task
        await waiter.execute("ROLLBACK")
        await holder.close()
        await waiter.close()


async def test_backup_freshness_follows_the_injected_clock(
    make_service: ServiceFactory, settings: Settings
) -> None:
    svc = await make_service(settings=_with(settings, HealthSettings(backup_max_age_hours=26)))
    await svc.init()
    await svc.provision("acme")
    assert (await svc.health.check()).check("backups").state is State.WARN  # type: ignore[union-attr]
    report = await svc.backups.run(["acme"], BackupKind.FULL)
    assert report.outcomes[0].ok
    finished = (await svc.backups.latest("acme")).finished_at  # type: ignore[union-attr]
    svc.health.clock = lambda: finished + timedelta(hours=25, minutes=59)
    fresh = (await svc.health.check()).check("backups")
    assert fresh is not None and fresh.state is State.OK and fresh.shown.startswith("0 stale")
    svc.health.clock = lambda: finished + timedelta(hours=26, minutes=1)
    stale = (await svc.health.check()).check("backups")
    assert stale is not None and stale.state is State.WARN and "acme" in stale.detail
    # A drill that does not give the data back (a digest planted in the manifest) is CRIT.
    svc.health.clock = lambda: finished + timedelta(hours=1)
    await svc.db.pool.execute(
        "UPDATE public.backups SET manifest = jsonb_set(manifest, "
        "'{tables,customers,digest}', '\"1\"') WHERE id = $1",
        report.outcomes[0].record.id,  # type: ignore[union-attr]
    )
    drill = await svc.backups.drill(["acme"])
    assert [t.tenant for t in drill.failures] == ["acme"]
    failed = (await svc.health.check()).check("backups")
    assert failed is not None and failed.state is State.CRIT
    assert "drill failed: acme" in failed.detail


async def test_samples_are_recorded_pruned_and_give_since(service: ConsoleService) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    now = start
    service.health.clock = lambda: now
    first = await service.health.check(record=True)
    assert first.recorded
    assert first.check("connections").since == start  # type: ignore[union-attr]
    now = start + timedelta(minutes=1)
    await service.health.check(record=True)
    series = await service.health.series(minutes=60)
    assert series is not None
    assert [t for t, _ in series["connections"]] == [start, now]
    assert len(series["connectivity"]) == 2 and series["replication"][0][1] == 0

    fresh = ConsoleService(service.settings, dsn=service.spec.conninfo)  # a restart
    await fresh.open()
    try:
        fresh.health.clock = lambda: start + timedelta(minutes=2)
        again = await fresh.health.check()
        assert again.check("connections").since == start  # type: ignore[union-attr]
        later = start + timedelta(hours=service.settings.health.sample_retention_hours, minutes=2)
        fresh.health.clock = lambda: later
        await fresh.health.check(record=True)
        async with fresh.db.acquire() as conn:
            kept = await conn.fetch("SELECT DISTINCT taken_at FROM public.health_samples")
        assert [r["taken_at"] for r in kept] == [later]
    finally:
        await fresh.close()


def _cli(config: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), "--dsn", dsn, "health", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


async def test_cli_health_exit_codes(
    service: ConsoleService, database_dsn: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    result = _cli(config, database_dsn, "--json")
    assert result.returncode == 1, result.stderr  # no scheduler leads the cluster: WARN
    payload = json.loads(result.stdout)
    assert payload["state"] == "WARN"
    assert {c["name"]: c["state"] for c in payload["checks"]}["connectivity"] == "OK"
    assert "scheduler WARN" in result.stderr
    text = _cli(config, database_dsn, "--watch", "--count", "2", "--interval", "0.1")
    assert text.returncode == 1 and text.stdout.count("health WARN at") == 2
    bad = _cli(config, database_dsn, "--count", "0")
    assert bad.returncode == 2 and "--count" in bad.stderr
    assert _cli(config, f"postgresql://postgres@127.0.0.1:1/{uuid.uuid4().hex}").returncode == 1


# -- the Health screen -----------------------------------------------------------------------

SCREEN_SIZE = (80, 24)


async def health_screen(pilot: Pilot[Any]) -> HealthScreen:
    """Open the Health area (h) and wait for its first check on screen."""
    app = pilot.app
    await tenants_screen(pilot)
    await pilot.press("h")

    def ready() -> HealthScreen | None:
        screen = app.screen
        return screen if isinstance(screen, HealthScreen) and screen.report else None

    found = await wait_for(pilot, ready, "the health screen's first check")
    assert isinstance(found, HealthScreen)
    await pilot.pause()
    return found


def tile(screen: HealthScreen, name: str) -> str:
    return str(screen.query_one(f"#tile-{name}", Static).render())


def cell(screen: HealthScreen, check: str, column: int) -> str:
    table: DataTable[str] = screen.query_one(DataTable)
    return str(table.get_row(check)[column])


async def test_screen_shows_tiles_checks_and_graphs_at_80x24(
    make_service: ServiceFactory, settings: Settings
) -> None:
    svc = await make_service(settings=fast(settings, health=HealthSettings(screen_interval=0.3)))
    await svc.init()
    await svc.health.check(record=True)  # one recorded sample for the graphs
    app = GoConsoleApp(svc)
    async with app.run_test(size=SCREEN_SIZE) as pilot:
        screen = await health_screen(pilot)
        assert tile(screen, "overall") == "Overall\nWARN"  # no scheduler leads the cluster
        assert tile(screen, "jobs") == "Jobs\nWARN"
        assert screen.report is not None  # cluster-wide sessions decide this tile's state
        connections = screen.report.group_state("connections").value
        assert tile(screen, "connections") == f"Connections\n{connections}"
        assert screen.query_one("#tile-overall").has_class("state-warn")
        # the round trip, timed on the app's busy loop, may cross 100 ms on a loaded machine
        connectivity = screen.report.check("connectivity")
        assert connectivity is not None and connectivity.state is not State.CRIT
        assert cell(screen, "connectivity", 1) == connectivity.state.value
        assert cell(screen, "connectivity", 2).endswith(" ms")
        assert cell(screen, "scheduler", 2) == "no leader"
        for tile_id in ("overall", "replication", "connections", "pools", "backups", "jobs"):
            region = screen.query_one(f"#tile-{tile_id}").region
            assert region.width >= 10 and region.bottom <= SCREEN_SIZE[1]
        plots = list(screen.query(PlotextPlot))
        assert len(plots) == 3 and all(p.region.height >= 5 for p in plots)
        polls = screen.polls_done

        await wait_for(pilot, lambda: screen.polls_done >= polls + 2, "two more checks")
        assert len(screen.graph_points()["connections"]) >= 3  # recorded + live


async def test_screen_shows_a_lost_cluster_as_crit_and_recovers(
    make_service: ServiceFactory, settings: Settings, standby: Standby
) -> None:
    """The app runs on the standby; stopping it turns the screen CRIT with the reason, and it
    recovers by itself when the standby is started again."""
    svc = ConsoleService(
        fast(settings, health=HealthSettings(screen_interval=0.3)), dsn=standby.dsn()
    )
    await svc.open()
    try:
        app = GoConsoleApp(svc)
        async with app.run_test(size=SCREEN_SIZE) as pilot:
            screen = await health_screen(pilot)
            assert cell(screen, "role", 2) == "standby"
            standby.cluster.stop("immediate")
            await wait_for(pilot, lambda: tile(screen, "overall") == "Overall\nCRIT", "CRIT")
            assert cell(screen, "connectivity", 1) == "CRIT"
            assert f"127.0.0.1:{standby.cluster.port}" in cell(screen, "connectivity", 5)
            standby.cluster.start()
            await wait_for(
                pilot,
                lambda: (
                    screen.report is not None
                    and screen.report.check("role") is not None
                    and cell(screen, "connectivity", 1) == "OK"
                ),
                "the screen to recover by itself",
            )
    finally:
        await svc.close()
