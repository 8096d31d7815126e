"""The embedded scheduler (``service.scheduler``): APScheduler 3's ``AsyncIOScheduler`` on the
host's event loop, the jobs of ``[schedule]`` re-created at each start (memory job store),
coalesced, each with its misfire grace. Every console may host it; only the leader runs jobs
(checked before each one). On becoming the leader it catches up: a fire time missed while no
scheduler ran is run once if still within its grace, else recorded as missed.

APScheduler keeps no history: runs are recorded by :func:`execute.execute`; its events give the
scheduled time of each run (a submitted job's) and the runs it missed or skipped. A listener
never looks a job up by id (a run-once job is gone before it sees the event).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from console.core.db import SESSION_ERRORS
from console.core.errors import ConnectionFailed, InvalidInput
from console.core.scheduler import history
from console.core.scheduler.execute import RunContext, execute
from console.core.scheduler.history import JobRun, Outcome, Trigger
from console.core.scheduler.jobs import Job, build_jobs
from console.core.scheduler.leader import LeaderInfo, Leadership, current_leader
from console.core.scheduler.triggers import cron_trigger, last_fire

if TYPE_CHECKING:
    from console.core.service import ConsoleService

Clock = Callable[[], datetime]
_LEADER_POLL_ID = "*leader*"


class Role(enum.StrEnum):
    """This console's part in scheduling."""

    OFF = "off"  # not hosting the scheduler
    LEADER = "leader"
    STANDBY = "standby"


@dataclass(frozen=True)
class ScheduledJob:
    """A job as the schedule shows it: expression, next fire time, newest run."""

    name: str
    schedule: str
    description: str
    next_run: datetime | None
    last_run: JobRun | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "job": self.name,
            "schedule": self.schedule,
            "description": self.description,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "last_run": self.last_run.as_json() if self.last_run else None,
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerService:
    """The scheduler of one console: host it (:meth:`start` / :meth:`stop`), run a job now,
    read the schedule, the history and the leader."""

    def __init__(self, service: ConsoleService, clock: Clock = _utc_now) -> None:
        self._service = service
        self._db = service.db
        self._clock = clock
        self.poll_s = service.settings.scheduler.leader_poll_s
        self.jobs: dict[str, Job] = build_jobs(service)
        actor = service.actor
        self.where = RunContext(actor.host, f"{actor.user}@{actor.host}")
        self.leadership = Leadership(self._db, service.runner.application_name("scheduler"))
        self.role = Role.OFF
        self.leader: LeaderInfo | None = None  # the leader at the last poll
        self._aps: AsyncIOScheduler | None = None
        self._due: dict[str, deque[datetime]] = defaultdict(deque)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- hosting ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start scheduling on the running loop and try to lead at once (a read-only console
        never leads: it shows the schedule and the leader)."""
        if self._aps is not None:
            return
        aps = AsyncIOScheduler(timezone=UTC)
        for job in self.jobs.values():
            aps.add_job(
                partial(self._fire, job.name),
                cron_trigger(job.schedule),
                id=job.name,
                name=job.name,
                misfire_grace_time=job.grace_s,
                coalesce=True,
                max_instances=1,
            )
        aps.add_job(
            self.poll_leader,
            IntervalTrigger(seconds=self.poll_s, timezone=UTC),
            id=_LEADER_POLL_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        aps.add_listener(
            self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        aps.start()
        self._aps = aps
        self.role = Role.STANDBY
        await self.poll_leader()

    async def stop(self) -> None:
        """Stop scheduling, cancel runs in progress, and give up the leadership (idempotent)."""
        aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.leadership.release()
        self.role = Role.OFF

    async def settle(self) -> None:
        """Wait for the runs started in the background (catch-ups, records) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def poll_leader(self) -> Role:
        """Try to lead (or check this console still does) and learn who leads; on becoming
        the leader, close runs a dead leader left open and catch up missed fire times."""
        was = self.leadership.held
        leads = False
        if not self._service.read_only:
            with contextlib.suppress(ConnectionFailed, *SESSION_ERRORS):
                leads = await self.leadership.try_acquire()
        self.role = Role.LEADER if leads else Role.STANDBY
        with contextlib.suppress(ConnectionFailed, RuntimeError, *SESSION_ERRORS):
            async with self._db.acquire() as conn:
                self.leader = await current_leader(conn)
                if leads and not was:
                    await history.close_interrupted(conn)
        if leads and not was:
            await self.catch_up(self._clock())
        return self.role

    async def catch_up(self, now: datetime) -> dict[str, Outcome]:
        """For each job, its latest fire time before ``now`` not handled yet (coalesced: one per
        job): started now in the background if within the job's grace, else recorded as missed.
        Returns what was decided per job (RUNNING: started)."""
        async with self._db.acquire() as conn:
            handled = await history.last_scheduled(conn)
            decided: dict[str, Outcome] = {}
            for job in self.jobs.values():
                fire = last_fire(cron_trigger(job.schedule), now, handled.get(job.name))
                if fire is None:
                    continue
                if (now - fire).total_seconds() <= job.grace_s:
                    self._spawn(execute(self._db, job, Trigger.CATCH_UP, fire, self.where))
                    decided[job.name] = Outcome.RUNNING
                elif await history.record(
                    conn,
                    job.name,
                    fire,
                    Outcome.MISSED,
                    f"no scheduler led the cluster at {fire:%Y-%m-%d %H:%M} UTC and the "
                    f"{job.grace_s} s grace had passed at {now:%H:%M}",
                    self.where.host,
                    self.where.leader,
                ):
                    decided[job.name] = Outcome.MISSED
        return decided

    async def _fire(self, name: str) -> None:
        """A scheduled fire of ``name``: run it if this console still leads."""
        due = self._due[name]
        scheduled_at = due.popleft() if due else self._clock()
        if not await self.leadership.check():
            self.role = Role.STANDBY
            return
        await execute(self._db, self.jobs[name], Trigger.SCHEDULE, scheduled_at, self.where)

    def _on_event(self, event: JobEvent) -> None:
        """Keep each submitted run's scheduled time for :meth:`_fire`; record missed and
        skipped runs (only the leader records)."""
        if event.job_id not in self.jobs:
            return
        if isinstance(event, JobSubmissionEvent):
            if event.code == EVENT_JOB_SUBMITTED:
                self._due[event.job_id].append(event.scheduled_run_times[-1])
                return
            times, outcome, why = event.scheduled_run_times, Outcome.SKIPPED, "still running"
        elif isinstance(event, JobExecutionEvent):
            with contextlib.suppress(ValueError):
                self._due[event.job_id].remove(event.scheduled_run_time)
            times, outcome, why = [event.scheduled_run_time], Outcome.MISSED, "started too late"
        else:
            return
        if self.leadership.held:
            for at in times:
                self._spawn(self._record(event.job_id, at, outcome, why))

    async def _record(self, job: str, at: datetime, outcome: Outcome, why: str) -> None:
        async with self._db.acquire() as conn:
            await history.record(conn, job, at, outcome, why, self.where.host, self.where.leader)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- running now ------------------------------------------------------------------------

    def job(self, name: str) -> Job:
        """The job called ``name`` (InvalidInput naming the jobs otherwise)."""
        try:
            return self.jobs[name]
        except KeyError:
            raise InvalidInput(f"no job {name!r}; jobs: {', '.join(self.jobs)}") from None

    async def run_now(self, name: str) -> JobRun:
        """Run job ``name`` now, whoever leads (audited ``jobs.run``); refused in read-only
        mode, and (JobBusy) while it runs anywhere on the cluster."""
        job = self.job(name)
        self._service.runner.refuse_if_read_only(f"jobs run {name}")
        run = await execute(self._db, job, Trigger.MANUAL, None, self.where)
        assert run is not None  # a manual run is never deduplicated or skipped
        async with self._db.acquire() as conn:
            await self._service.audit_log.write(
                conn,
                None,
                "jobs.run",
                {"job": name, "run": str(run.id), "outcome": run.outcome.value},
            )
        return run

    # -- reads ------------------------------------------------------------------------------

    async def schedule(self) -> list[ScheduledJob]:
        """Every job with its next fire time (from the clock) and newest run."""
        now = self._clock()
        async with self._db.acquire() as conn:
            newest = await history.latest(conn)
        return [
            ScheduledJob(
                job.name,
                job.schedule,
                job.description,
                cron_trigger(job.schedule).get_next_fire_time(None, now),
                newest.get(job.name),
            )
            for job in self.jobs.values()
        ]

    async def history(
        self, job: str | None = None, outcome: Outcome | None = None, limit: int = 100
    ) -> list[JobRun]:
        """Runs newest first (of one job, one outcome)."""
        if job is not None:
            self.job(job)
        async with self._db.acquire() as conn:
            return await history.runs(conn, job, outcome, limit)

    async def current_leader(self) -> LeaderInfo | None:
        """Who leads the cluster now (None: nobody)."""
        async with self._db.acquire() as conn:
            self.leader = await current_leader(conn)
        return self.leader

    def status(self) -> str:
        """The header's words: ``leader``, ``standby (leader ops@host since 02:11)``, ``off``."""
        if self.role is Role.STANDBY:
            who = f"leader {self.leader.describe()}" if self.leader else "no leader"
            return f"standby ({who})"
        return self.role.value
