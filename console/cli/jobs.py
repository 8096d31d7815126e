"""``goconsole scheduler run [--once JOB]`` and ``goconsole jobs list|history|run``: the
embedded scheduler as a foreground daemon, and the jobs' schedule, history and runs."""

from __future__ import annotations

import argparse
import asyncio
import signal

from console.cli.command import Commands
from console.cli.render import emit_json, print_table
from console.core.errors import OperationFailed
from console.core.scheduler.history import JobRun, Outcome
from console.core.service import ConsoleService

_TIME = "%Y-%m-%d %H:%M"


def _when(value: object) -> str:
    return value.strftime(_TIME) if hasattr(value, "strftime") else "-"


async def _scheduler_run(service: ConsoleService, args: argparse.Namespace) -> None:
    if args.once:
        await _run_job(service, args.once, args.json)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler = service.scheduler
    await scheduler.start()
    print(f"scheduler started: {scheduler.status()}; {len(scheduler.jobs)} job(s)", flush=True)
    try:
        await stop.wait()
    finally:
        await scheduler.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _run(service: ConsoleService, args: argparse.Namespace) -> None:
    await _run_job(service, args.job, args.json)


async def _run_job(service: ConsoleService, name: str, as_json: bool) -> None:
    run = await service.scheduler.run_now(name)
    if as_json:
        emit_json(run.as_json())
    else:
        print(f"{run.job}: {run.outcome.value}: {run.summary}")
        _print_failures(run)
    if run.outcome is Outcome.FAILED:
        raise OperationFailed(f"job {run.job} failed: {run.summary}")


def _print_failures(run: JobRun) -> None:
    if run.failures:
        print_table(("TENANT", "FAILURE"), sorted(run.failures.items()))


async def _list(service: ConsoleService, args: argparse.Namespace) -> None:
    jobs = await service.scheduler.schedule()
    leader = await service.scheduler.current_leader()
    if args.json:
        emit_json(
            {
                "leader": {"who": leader.who, "pid": leader.pid, "since": leader.since.isoformat()}
                if leader
                else None,
                "jobs": [j.as_json() for j in jobs],
            }
        )
        return
    print_table(
        ("JOB", "SCHEDULE", "NEXT RUN (UTC)", "LAST RUN", "OUTCOME"),
        [
            (
                j.name,
                j.schedule,
                _when(j.next_run),
                _when(j.last_run.started_at) if j.last_run else "-",
                j.last_run.outcome.value if j.last_run else "never run",
            )
            for j in jobs
        ],
    )
    print(f"leader: {leader.describe() if leader else 'none (no scheduler leads this cluster)'}")


async def _history(service: ConsoleService, args: argparse.Namespace) -> None:
    outcome = Outcome(args.outcome) if args.outcome else None
    runs = await service.scheduler.history(args.job, outcome, args.limit)
    if args.json:
        emit_json([r.as_json() for r in runs])
        return
    print_table(
        ("JOB", "SCHEDULED", "STARTED", "OUTCOME", "TRIGGER", "LEADER", "SUMMARY"),
        [
            (
                r.job,
                _when(r.scheduled_at),
                _when(r.started_at),
                r.outcome.value + (f" ({len(r.failures)} tenants)" if r.failures else ""),
                r.trigger.value,
                r.leader,
                r.summary,
            )
            for r in runs
        ],
    )


COMMANDS: Commands = {
    ("scheduler", "run"): _scheduler_run,
    ("jobs", "list"): _list,
    ("jobs", "history"): _history,
    ("jobs", "run"): _run,
}
