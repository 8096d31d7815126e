"""One run of one job, whatever started it: take the job's advisory lock (so a job never runs
twice at once on the cluster), record the run in ``job_runs``, run it, record how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from console.core import locks
from console.core.db import Database
from console.core.errors import JobBusy
from console.core.operations import describe_error
from console.core.scheduler import history
from console.core.scheduler.history import JobRun, Outcome, Trigger
from console.core.scheduler.jobs import Job, JobResult


@dataclass(frozen=True)
class RunContext:
    """Where a run happens: this console's host and the leader (user@host) it runs under."""

    host: str
    leader: str


async def lock_holder(conn: asyncpg.Connection, name: str) -> str:
    """Who holds the advisory lock ``name`` and since when, in words."""
    row = await conn.fetchrow(
        "SELECT a.pid, a.application_name, a.state_change FROM pg_locks l "
        f"JOIN pg_stat_activity a ON a.pid = l.pid WHERE {locks.held_lock_sql('$1')}",
        name,
    )
    if row is None:
        return "another session (it just finished)"
    return (
        f"{row['application_name'] or 'another session'} (backend pid {row['pid']}) "
        f"since {row['state_change']:%H:%M:%S %Z}"
    )


async def execute(
    db: Database,
    job: Job,
    trigger: Trigger,
    scheduled_at: datetime | None,
    where: RunContext,
) -> JobRun | None:
    """Run ``job`` once and return its ``job_runs`` row; None when its fire time was already
    handled or it was skipped (still running elsewhere). A manual run of a running job raises
    JobBusy instead."""
    name = history.job_lock(job.name)
    async with db.acquire() as lock_conn:
        if not await locks.try_lock(lock_conn, name):
            holder = await lock_holder(lock_conn, name)
            if trigger is Trigger.MANUAL:
                raise JobBusy(f"job {job.name} is already running: {holder}")
            if scheduled_at is not None:
                await history.record(
                    lock_conn,
                    job.name,
                    scheduled_at,
                    Outcome.SKIPPED,
                    f"still running: {holder}",
                    where.host,
                    where.leader,
                )
            return None
        try:
            run_id = await history.begin(
                lock_conn, job.name, scheduled_at, trigger, where.host, where.leader
            )
            if run_id is None:
                return None
            outcome, result = await _outcome(job)
            async with db.acquire() as conn:
                await history.finish(conn, run_id, outcome, result.summary, result.failures)
                return await history.get(conn, run_id)
        finally:
            await locks.unlock_many(lock_conn, [name])


async def _outcome(job: Job) -> tuple[Outcome, JobResult]:
    """Run the job: succeeded with no tenant failing, else failed. A cancelled run's row stays
    ``running`` until the next leader closes it (:func:`history.close_interrupted`)."""
    try:
        result = await job.run()
    except Exception as exc:  # any failure is the run's outcome, kept in its row
        return Outcome.FAILED, JobResult(describe_error(exc))
    return (Outcome.FAILED if result.failures else Outcome.SUCCEEDED), result
