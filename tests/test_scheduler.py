"""The embedded scheduler on a real cluster: schedule expressions, catch-up of missed fire
times with an injected clock, one leader per cluster, the history, manual runs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from helpers import PATIENCE_S, wait_until

from console.config import SchedulerSettings, ScheduleSettings, Settings, parse_settings
from console.core import locks
from console.core.actor import Actor
from console.core.errors import ConfigError, JobBusy, ReadOnlyMode
from console.core.health.model import State
from console.core.scheduler.history import Outcome, Trigger, job_lock
from console.core.scheduler.service import Role, SchedulerService
from console.core.scheduler.triggers import cron_trigger, last_fire
from console.core.service import ConsoleService

NIGHT = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday


def fires(expr: str, start: datetime, count: int) -> list[datetime]:
    trigger = cron_trigger(expr)
    found: list[datetime] = []
    previous = None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, previous or start)
        assert previous is not None
        found.append(previous)
    return found


@pytest.mark.parametrize(
    ("cron", "quartz"),
    [
        ("0 2 * * *", "0 0 2 * * ?"),
        ("30 3 * * 1-5", "0 30 3 ? * MON-FRI"),
        ("0 4 * * 0", "0 0 4 ? * 1"),
        ("*/15 8-18 * * *", "0 */15 8-18 * * ? *"),
    ],
)
def test_quartz_and_cron_forms_fire_alike(cron: str, quartz: str) -> None:
    assert fires(cron, NIGHT, 12) == fires(quartz, NIGHT, 12)


def test_cron_weekdays_count_from_sunday() -> None:
    # APScheduler 3's from_crontab would read 0 as Monday; cron means Sunday.
    assert {d.strftime("%a") for d in fires("0 4 * * 0,7", NIGHT, 3)} == {"Sun"}
    assert [d.strftime("%a") for d in fires("0 4 * * 1-2", NIGHT, 2)] == ["Mon", "Tue"][::-1]


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("0 2 * *", "5-field cron expression"),
        ("0 0 2 * * ? * 1", "Quartz one with seconds first"),
        ("61 0 2 * * ?", "the second field '61' must use values 0-59"),
        ("0 0 2 ? * 8", "the day of week field '8' must use values 1-7"),
        ("0 0 2 L * ?", "the day of month field 'L' must use values 1-31"),
    ],
)
def test_bad_schedule_names_key_and_forms(expr: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"schedule": {"full_backup": expr}}, "test.toml")
    assert str(err.value).startswith("test.toml: schedule.full_backup")
    assert complaint in str(err.value)


def test_last_fire_is_the_latest_before_now() -> None:
    trigger = cron_trigger("0 2 * * *")
    now = NIGHT + timedelta(hours=2, minutes=20)
    assert last_fire(trigger, now) == NIGHT + timedelta(hours=2)
    assert last_fire(trigger, now, after=NIGHT + timedelta(hours=2)) is None


# -- on a cluster ----------------------------------------------------------------------------


def scheduling(settings: Settings, poll_s: float = 0.2, **schedule: str) -> Settings:
    return dataclasses.replace(
        settings,
        schedule=dataclasses.replace(ScheduleSettings(), **schedule),
        scheduler=SchedulerSettings(leader_poll_s=poll_s),
    )


@pytest.fixture
async def open_service(
    settings: Settings, database_dsn: str
) -> AsyncIterator[Callable[..., object]]:
    """Opens ConsoleServices (as a chosen actor) on the initialised test database."""
    opened: list[ConsoleService] = []

    async def make(
        user: str = "ops", settings: Settings = settings, read_only: bool = False
    ) -> ConsoleService:
        svc = ConsoleService(
            settings,
            dsn=database_dsn,
            actor=Actor(user, f"{user}-host", "127.0.0.1"),
            read_only=read_only,
        )
        await svc.open()
        opened.append(svc)
        return svc

    first = await make()
    await first.init()
    yield make
    for svc in reversed(opened):
        await svc.close()


async def runs_of(su: asyncpg.Connection, job: str) -> list[asyncpg.Record]:
    return await su.fetch("SELECT * FROM job_runs WHERE job = $1 ORDER BY started_at", job)


async def test_started_at_0220_runs_the_0200_backup_once(open_service, su) -> None:
    svc = await open_service()
    now = NIGHT + timedelta(hours=2, minutes=20)
    sched = SchedulerService(svc, clock=lambda: now)
    decided = await sched.catch_up(now)
    await sched.settle()
    assert decided["full_backup"] is Outcome.RUNNING
    (run,) = await runs_of(su, "full_backup")
    assert run["trigger"] == Trigger.CATCH_UP.value
    assert run["scheduled_at"] == NIGHT + timedelta(hours=2)
    assert run["outcome"] == "succeeded"
    assert "no ACTIVE tenants" in run["summary"]
    # A second start (another console, or a restart) finds the fire time handled.
    again = SchedulerService(await open_service("other"), clock=lambda: now)
    assert "full_backup" not in await again.catch_up(now)
    await again.settle()
    assert len(await runs_of(su, "full_backup")) == 1


async def test_started_at_0900_records_the_0200_backup_missed(open_service, su) -> None:
    svc = await open_service()
    now = NIGHT + timedelta(hours=9)
    sched = SchedulerService(svc, clock=lambda: now)
    decided = await sched.catch_up(now)
    await sched.settle()
    assert decided["full_backup"] is Outcome.MISSED
    (run,) = await runs_of(su, "full_backup")
    assert run["outcome"] == "missed"
    assert run["scheduled_at"] == NIGHT + timedelta(hours=2)
    assert "grace" in run["summary"]
    # Coalesced: one decision per job, whatever number of fire times the gap held.
    assert len(await runs_of(su, "health_check")) <= 1
    assert len(await runs_of(su, "incremental_backup")) == 1


async def test_backup_job_backs_up_active_tenants(open_service, su) -> None:
    svc = await open_service()
    await svc.provision("acme")
    await svc.provision("beta")
    await svc.deactivate("beta")
    run = await svc.scheduler.run_now("full_backup")
    assert run.outcome is Outcome.SUCCEEDED, run.summary
    assert run.summary.startswith("1 of 1 tenant(s) backed up (full)")
    keys = await su.fetch(
        "SELECT t.key FROM backups b JOIN tenants t ON t.id = b.tenant_id "
        "WHERE b.reason = 'scheduled'"
    )
    assert [k["key"] for k in keys] == ["acme"]
    audit = await su.fetchrow(
        "SELECT actor, details FROM tenant_audit_log WHERE action_type = 'jobs.run'"
    )
    assert audit["details"]["job"] == "full_backup"
    assert audit["details"]["run"] == str(run.id)


async def test_manual_run_refused_read_only_and_while_running(open_service, su) -> None:
    reader = await open_service("reader", read_only=True)
    with pytest.raises(ReadOnlyMode):
        await reader.scheduler.run_now("retention_prune")
    svc = await open_service()
    assert await locks.try_lock(su, job_lock("retention_prune"))
    with pytest.raises(JobBusy, match="retention_prune is already running"):
        await svc.scheduler.run_now("retention_prune")
    await locks.unlock(su, job_lock("retention_prune"))
    assert (await svc.scheduler.run_now("retention_prune")).outcome is Outcome.SUCCEEDED
    assert await su.fetchval("SELECT count(*) FROM job_runs") == 1


async def test_unknown_job_names_the_jobs(open_service) -> None:
    svc = await open_service()
    with pytest.raises(Exception, match="no job 'nightly'; jobs: full_backup, "):
        await svc.scheduler.run_now("nightly")


async def test_a_dead_leaders_running_row_is_closed_by_the_next(open_service, su) -> None:
    await su.execute("INSERT INTO job_runs (job, scheduled_at) VALUES ('full_backup', now())")
    svc = await open_service()
    sched = SchedulerService(svc, clock=lambda: NIGHT)
    assert await sched.poll_leader() is Role.LEADER
    await sched.settle()
    row = await su.fetchrow("SELECT * FROM job_runs WHERE trigger = 'schedule'")
    assert row["outcome"] == "failed"
    assert row["summary"].startswith("interrupted")
    await sched.stop()


async def test_two_schedulers_run_each_fire_once(open_service, settings, su) -> None:
    every_second = {k: "* * * * * ?" for k in dataclasses.asdict(ScheduleSettings())}
    fast = scheduling(settings, **every_second)
    first = (await open_service("ann", fast)).scheduler
    second = (await open_service("bob", fast)).scheduler
    await first.start()
    await second.start()
    leaders = {s.role for s in (first, second)}
    assert leaders == {Role.LEADER, Role.STANDBY}
    standby = second if first.role is Role.LEADER else first
    assert standby.status().startswith("standby (leader ")
    assert "@" in standby.status()

    async def enough() -> bool:
        counts = await su.fetch(
            "SELECT job, count(*) FROM job_runs WHERE outcome = 'succeeded' GROUP BY job"
        )
        return len(counts) == len(first.jobs) and all(c["count"] >= 3 for c in counts)

    await wait_until(enough, "three runs of every job")
    await first.stop()
    await second.stop()
    dupes = await su.fetch(
        "SELECT job, scheduled_at FROM job_runs WHERE trigger = 'schedule' "
        "GROUP BY job, scheduled_at HAVING count(*) > 1"
    )
    assert dupes == []
    leader = "ann@ann-host" if standby is second else "bob@bob-host"
    assert {r["leader"] for r in await su.fetch("SELECT leader FROM job_runs")} == {leader}


async def test_kill_9_of_the_leader_lets_a_standby_take_over(
    open_service, settings, database_dsn: str, tmp_path: Path, su
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[scheduler]\nleader_poll_s = 0.2\n[backup]\ndir = "{tmp_path}"\n')
    env = {**os.environ, "GOCONSOLE_DSN": database_dsn}
    errors = tmp_path / "daemon.err"
    with errors.open("w") as err_file:
        leader = subprocess.Popen(
            [sys.executable, "-m", "console", "--config", str(config), "scheduler", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
    try:

        async def led() -> bool:
            if leader.poll() is not None:
                pytest.fail(
                    f"the scheduler exited: {leader.stderr.read() if leader.stderr else ''}"
                )
            return bool(
                await su.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                    "'goconsole scheduler %' AND pid <> pg_backend_pid()"
                )
            )

        await wait_until(led, "the daemon to lead")
        standby = (await open_service("standby", scheduling(settings))).scheduler
        await standby.start()
        assert standby.role is Role.STANDBY
        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.wait(PATIENCE_S)

        async def took_over() -> bool:
            return standby.role is Role.LEADER

        await wait_until(took_over, "the standby to take over")
        taken = time.monotonic() - killed
        print(f"takeover after kill -9: {taken * 1000:.0f} ms (leader_poll_s 0.2)")
        await standby.stop()
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


def goconsole(dsn: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "cli.toml"
    config.write_text(f'[backup]\ndir = "{tmp_path}"\n')
    return subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), "--dsn", dsn, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=PATIENCE_S,
    )


async def test_jobs_cli(open_service, database_dsn: str, tmp_path: Path) -> None:
    await open_service()
    ran = goconsole(database_dsn, tmp_path, "jobs", "run", "retention_prune", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["outcome"] == "succeeded"
    listed = goconsole(database_dsn, tmp_path, "jobs", "list", "--json")
    jobs = {j["job"]: j for j in json.loads(listed.stdout)["jobs"]}
    assert jobs["retention_prune"]["last_run"]["trigger"] == "manual"
    assert jobs["full_backup"]["last_run"] is None
    history = goconsole(database_dsn, tmp_path, "jobs", "history", "retention_prune")
    assert "retention_prune" in history.stdout and "manual" in history.stdout
    unknown = goconsole(database_dsn, tmp_path, "jobs", "run", "nightly")
    assert unknown.returncode == 2
    assert "no job 'nightly'; jobs: full_backup" in unknown.stderr
    refused = goconsole(database_dsn, tmp_path, "--read-only", "jobs", "run", "retention_prune")
    assert refused.returncode == 2
    assert "read-only" in refused.stderr


async def test_health_sees_the_leader_and_each_jobs_newest_run(
    open_service, settings: Settings, su: asyncpg.Connection
) -> None:
    svc = await open_service()
    await svc.provision("acme")

    async def scheduler_check() -> tuple[State, str, str]:
        found = (await svc.health.check()).check("scheduler")
        assert found is not None
        return found.state, found.shown, found.detail

    assert (await scheduler_check())[:2] == (State.WARN, "no leader")
    leader = SchedulerService(await open_service("lead"))
    assert await leader.poll_leader() is Role.LEADER
    await leader.settle()  # becoming the leader caught up (ran or recorded missed) each job
    await su.execute("DELETE FROM job_runs")
    state, shown, _ = await scheduler_check()
    assert state is State.OK and shown.startswith("leader ") and "lead@lead-host" in shown
    # A missed run is a warning; a failed one (no age recipient for the backup) critical.
    now = NIGHT + timedelta(hours=9)
    missed = SchedulerService(svc, clock=lambda: now)
    await missed.catch_up(now)
    await missed.settle()
    state, _, detail = await scheduler_check()
    assert state is State.WARN and detail.startswith("missed: ") and "full_backup" in detail
    keyless = dataclasses.replace(
        settings,
        backup=dataclasses.replace(settings.backup, recipients=(), recipients_file=""),
    )
    run = await (await open_service("ops", keyless)).scheduler.run_now("full_backup")
    assert run.outcome is Outcome.FAILED
    assert (await scheduler_check())[0] is State.CRIT
    assert (await scheduler_check())[2] == "failed: full_backup"
    await leader.stop()
