"""The embedded scheduler plus a console's health polling while idle, and a scheduler daemon's
memory over 24 simulated hours of jobs.

    .venv/bin/python bench/scheduler.py [--tenants 300] [--minutes 3] [--hours 24] [--pg-bin DIR]

On a throwaway cluster: ``init``, ``--tenants`` ACTIVE tenants (template clone, empty tables:
backups stay small), an age key for the backups. Then two child processes on it, one after the
other, each a fresh ``python`` like ``goconsole scheduler run``:

1. idle: for ``--minutes`` the process only sleeps (asyncio), the baseline; then, for as long,
   it hosts the scheduler (``service.scheduler.start()``: leader, the real schedule in real time,
   the leader poll every ``scheduler.leader_poll_s``) and polls health as the Health screen does
   (``health.check()`` and the graphs' ``health.series(60)``, then ``health.screen_interval``
   seconds of sleep). Each window's process CPU time (``time.process_time``) over its wall time,
   as % of one core, and the server's CPU over the same window (the postmaster and its
   children, from /proc). Fire times missed before the start are caught up and settled before
   the window opens; the runs that started inside it are listed. Target < 1 % of one core.
2. day: a :class:`SchedulerService` led by this process on an injected clock stepping through
   ``--hours`` hours from 01:00 UTC tomorrow (after the idle child's real fire times): at every
   fire time of any job (every minute's health check, hourly statistics, 4-hourly incrementals,
   the nightly full, prune, drill and purge) the leader is polled, ``catch_up(now)`` starts the
   due jobs and they are settled, each job really run against the cluster. The process RSS
   (``VmRSS``) after every simulated hour; the series, the max and the slope over the last 12
   hours. Target < 150 MB and flat (growth over the last 12 hours < 5 MB). APScheduler's own
   timer is not used here (it reads the wall clock); the idle child runs it.

Results: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from backup import make_keys
from pyrage import x25519

from console.config import BackupSettings, Settings
from console.core.binaries import PgBinaries
from console.core.scheduler.service import SchedulerService
from console.core.scheduler.triggers import cron_trigger
from console.core.service import ConsoleService
from console.devenv.postgres import throwaway_cluster

IDLE_TARGET_PCT = 1.0
RSS_TARGET_MB = 150.0
FLAT_MB = 5.0  # growth over the last 12 simulated hours below which memory is flat
TICK_S = os.sysconf("SC_CLK_TCK")


def bench_settings(work: Path) -> Settings:
    """The console's settings: backups under ``work``, encrypted to the key in ``work``."""
    identity_file = work / "backup.key"
    identity = x25519.Identity.from_str(identity_file.read_text(encoding="utf-8").strip())
    backup = BackupSettings(
        dir=str(work / "backups"),
        recipients=(str(identity.to_public()),),
        identity_file=str(identity_file),
    )
    return dataclasses.replace(Settings(), backup=backup)


def server_cpu_s(postmaster: int) -> float:
    """CPU seconds used so far by the postmaster and its live children (from /proc)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK_S


def rss_mb() -> float:
    """This process's resident set size now, in MB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- 1. idle -----------------------------------------------------------------------------------


async def window(name: str, work: Callable[[], Awaitable[str]], postmaster: int) -> float:
    """Run ``work`` and print its process CPU over wall time (% of one core); returns it."""
    cpu0, wall0, server0 = time.process_time(), time.perf_counter(), server_cpu_s(postmaster)
    what = await work()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    server = server_cpu_s(postmaster) - server0
    pct = 100 * cpu / wall
    print(
        f"{name}: {cpu * 1000:.0f} ms CPU in {wall:.0f} s = {pct:.3f} % of one core "
        f"(server {100 * server / wall:.2f} %); {what}",
        flush=True,
    )
    return pct


async def idle(args: argparse.Namespace) -> None:
    """The baseline, then the scheduler plus the Health screen's polling, as long each."""
    seconds = args.minutes * 60
    async with ConsoleService(bench_settings(Path(args.work)), dsn=args.dsn) as service:
        await service.require_initialised()
        health = service.health

        async def nothing() -> str:
            await asyncio.sleep(seconds)
            return "asyncio.sleep"

        async def hosting() -> str:
            loop = asyncio.get_running_loop()
            deadline, polls = loop.time() + seconds, 0
            while (left := deadline - loop.time()) > 0:
                await health.check()
                await health.series(60)
                polls += 1
                await asyncio.sleep(min(health.settings.screen_interval, max(0.0, left)))
            return f"{polls} health polls, leader polled every {service.scheduler.poll_s:g} s"

        base = await window("baseline (sleep)", nothing, args.postmaster)
        scheduler = service.scheduler
        await scheduler.start()
        await scheduler.settle()  # fire times missed before this start: caught up, not timed
        print(f"scheduler: {scheduler.status()}", flush=True)
        opened = datetime.now(UTC)
        hosted = await window("scheduler + health polling", hosting, args.postmaster)
        async with service.db.acquire() as conn:
            ran = await conn.fetch(
                "SELECT job, count(*) AS n FROM job_runs WHERE started_at >= $1 GROUP BY job "
                "ORDER BY job",
                opened,
            )
        print("job runs in the window: " + (", ".join(f"{r['job']} {r['n']}" for r in ran) or "-"))
        verdict = "met" if hosted < IDLE_TARGET_PCT else "NOT met"
        print(
            f"idle cost: {hosted:.3f} % of one core (baseline {base:.3f} %, "
            f"difference {hosted - base:.3f} %); target < {IDLE_TARGET_PCT:g} %: {verdict}",
            flush=True,
        )


# -- 2. a simulated day ------------------------------------------------------------------------


class SimClock:
    """The injected clock: a settable ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def day(args: argparse.Namespace) -> None:
    """``--hours`` simulated hours of every job's fire times, RSS after each hour."""
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    start += timedelta(days=1)
    clock = SimClock(start)
    series = [rss_mb()]
    print(f"hour 0 ({start:%Y-%m-%d %H:%M}): RSS {series[0]:.1f} MB (before opening)", flush=True)
    async with ConsoleService(bench_settings(Path(args.work)), dsn=args.dsn) as service:
        await service.require_initialised()
        service.health.clock = clock  # samples at the simulated times
        scheduler = SchedulerService(service, clock=clock)
        triggers = [cron_trigger(job.schedule) for job in scheduler.jobs.values()]
        try:
            for hour in range(args.hours):
                began, fires = time.perf_counter(), 0
                at = start + timedelta(hours=hour)
                end = at + timedelta(hours=1)
                while (at := _next_fire(triggers, at)) < end:
                    clock.now = at + timedelta(seconds=1)
                    await scheduler.poll_leader()  # leads (and catches up) from the first on
                    await scheduler.settle()
                    await scheduler.catch_up(clock.now)
                    await scheduler.settle()
                    fires += 1
                    at += timedelta(seconds=1)
                series.append(rss_mb())
                print(
                    f"hour {hour + 1} ({end:%H:%M}): RSS {series[-1]:.1f} MB; {fires} fire "
                    f"times in {time.perf_counter() - began:.1f} s",
                    flush=True,
                )
        finally:
            await scheduler.stop()
        async with service.db.acquire() as conn:
            runs = await conn.fetch(
                "SELECT job, outcome, count(*) AS n FROM job_runs WHERE scheduled_at >= $1 "
                "GROUP BY job, outcome ORDER BY job, outcome",
                start,
            )
            failed = await conn.fetch(
                "SELECT job, summary, failures FROM job_runs WHERE scheduled_at >= $1 "
                "AND outcome = 'failed' ORDER BY scheduled_at",
                start,
            )
    print("runs: " + ", ".join(f"{r['job']} {r['outcome']} {r['n']}" for r in runs))
    for r in failed:
        print(f"failed: {r['job']}: {r['summary']} {str(r['failures'])[:300]}")
    report_rss(series)


def _next_fire(triggers: list[CronTrigger], after: datetime) -> datetime:
    """The earliest fire time of any trigger at or after ``after``."""
    fire: datetime = min(t.get_next_fire_time(None, after) for t in triggers)
    return fire


def report_rss(series: list[float]) -> None:
    """The RSS series, its max and the slope over the last 12 hours, against the targets."""
    print("RSS by simulated hour (MB): " + ", ".join(f"{v:.1f}" for v in series))
    last = series[-12:]
    slope = statistics.linear_regression(range(len(last)), last).slope
    growth = slope * (len(last) - 1)
    peak = max(series)
    flat = "flat" if abs(growth) < FLAT_MB else "NOT flat"
    verdict = "met" if peak < RSS_TARGET_MB and abs(growth) < FLAT_MB else "NOT met"
    print(
        f"max RSS {peak:.1f} MB; last {len(last)} hours: slope {slope:+.3f} MB/h "
        f"({growth:+.2f} MB, {flat}); target < {RSS_TARGET_MB:g} MB and flat: {verdict}",
        flush=True,
    )


# -- the parent --------------------------------------------------------------------------------


async def setup(dsn: str, work: Path, tenants: int) -> None:
    """``init``, the tenants, the backup key."""
    make_keys(work)
    async with ConsoleService(bench_settings(work), dsn=dsn) as service:
        await service.init()
        started = time.perf_counter()
        report = await service.provision_many([f"t{i:04d}" for i in range(tenants)])
        print(
            f"provisioned {tenants} tenants in {time.perf_counter() - started:.1f} s "
            f"({report.failed} failed)",
            flush=True,
        )


def child(phase: str, dsn: str, work: Path, postmaster: int, args: argparse.Namespace) -> None:
    """Run one phase in a fresh interpreter, as a daemon would be; raise if it fails."""
    load = os.getloadavg()
    print(f"\n== {phase} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)
    command = [sys.executable, __file__, "--child", phase, "--dsn", dsn, "--work", str(work)]
    command += ["--postmaster", str(postmaster), "--minutes", str(args.minutes)]
    command += ["--hours", str(args.hours)]
    subprocess.run(command, check=True)
    load = os.getloadavg()
    print(f"(load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", flush=True)


def main() -> int:
    """Parse arguments; as the parent: cluster, setup, both children; as a child: its phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    parser.add_argument("--child", choices=("idle", "day"), help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--postmaster", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tenants < 1 or args.minutes <= 0 or args.hours < 2:
        parser.error("--tenants must be 1 or more, --minutes above 0, --hours 2 or more")
    if args.child:
        asyncio.run(idle(args) if args.child == "idle" else day(args))
        return 0
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    print(f"PostgreSQL {binaries.major_version()}, {os.cpu_count()} cores", flush=True)
    with throwaway_cluster(binaries, {"max_connections": "100"}, "goconsole-bench-") as (
        cluster,
        work,
    ):
        dsn = cluster.dsn()
        asyncio.run(setup(dsn, work, args.tenants))
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        for phase in ("idle", "day"):
            child(phase, dsn, work, postmaster, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
