"""``job_runs``: one row per scheduled, caught-up or manual run of a job, and per skipped or
missed one: when it was due, who ran it where, how it ended, what failed per tenant."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from console.core import locks


class Outcome(enum.StrEnum):
    """How a run ended (``running`` until it does)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSED = "missed"


class Trigger(enum.StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch-up"  # a fire time missed while no scheduler ran, still within its grace
    MANUAL = "manual"


@dataclass(frozen=True)
class JobRun:
    """One ``job_runs`` row."""

    id: uuid.UUID
    job: str
    scheduled_at: datetime | None
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome
    trigger: Trigger
    host: str
    leader: str
    failures: dict[str, str]
    summary: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.id),
            "job": self.job,
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "outcome": self.outcome.value,
            "trigger": self.trigger.value,
            "host": self.host,
            "leader": self.leader,
            "failures": self.failures,
            "summary": self.summary,
        }


_COLUMNS = (
    "id, job, scheduled_at, started_at, finished_at, outcome, trigger, host, leader, failures, "
    "summary"
)
# A scheduled fire time is handled once: by a run, a skip or a miss, whoever records it first.
_UNHANDLED = (
    "NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.job = $1 AND r.scheduled_at = $2 "
    "AND r.trigger <> 'manual')"
)


def job_lock(job: str) -> str:
    """The advisory-lock name held while ``job`` runs (no tenant key looks like it)."""
    return f"*job:{job}*"


_JOB_LOCK_SQL = "'*job:' || j.job || '*'"  # job_lock() of the row ``j``, in SQL


def _run(row: asyncpg.Record) -> JobRun:
    return JobRun(
        row["id"],
        row["job"],
        row["scheduled_at"],
        row["started_at"],
        row["finished_at"],
        Outcome(row["outcome"]),
        Trigger(row["trigger"]),
        row["host"],
        row["leader"],
        dict(row["failures"]),
        row["summary"],
    )


async def begin(
    conn: asyncpg.Connection,
    job: str,
    scheduled_at: datetime | None,
    trigger: Trigger,
    host: str,
    leader: str,
) -> uuid.UUID | None:
    """A ``running`` row; None when a scheduled fire time (not a manual run) already has one."""
    guard = "true" if trigger is Trigger.MANUAL else _UNHANDLED
    value = await conn.fetchval(
        "INSERT INTO job_runs (job, scheduled_at, trigger, host, leader) "
        f"SELECT $1, $2, $3, $4, $5 WHERE {guard} RETURNING id",
        job,
        scheduled_at,
        trigger.value,
        host,
        leader,
    )
    return value if isinstance(value, uuid.UUID) else None


async def finish(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    outcome: Outcome,
    summary: str,
    failures: dict[str, str],
) -> None:
    """Close a run with its outcome."""
    await conn.execute(
        "UPDATE job_runs SET outcome = $2, summary = $3, failures = $4, "
        "finished_at = clock_timestamp() WHERE id = $1",
        run_id,
        outcome.value,
        summary,
        failures,
    )


async def record(
    conn: asyncpg.Connection,
    job: str,
    scheduled_at: datetime,
    outcome: Outcome,
    summary: str,
    host: str,
    leader: str,
) -> bool:
    """A run that did not happen (skipped or missed), unless that fire time is handled;
    whether it was recorded."""
    done = await conn.fetchval(
        "INSERT INTO job_runs (job, scheduled_at, outcome, summary, host, leader, finished_at) "
        f"SELECT $1, $2, $3, $4, $5, $6, clock_timestamp() WHERE {_UNHANDLED} RETURNING true",
        job,
        scheduled_at,
        outcome.value,
        summary,
        host,
        leader,
    )
    return bool(done)


async def close_interrupted(conn: asyncpg.Connection) -> int:
    """Mark failed the ``running`` rows whose job lock nobody holds (their scheduler died);
    returns how many."""
    status = await conn.execute(
        "UPDATE job_runs j SET outcome = 'failed', finished_at = clock_timestamp(), "
        "summary = 'interrupted: the process running it stopped' "
        "WHERE outcome = 'running' AND NOT EXISTS (SELECT 1 FROM pg_locks l "
        f"WHERE {locks.held_lock_sql(_JOB_LOCK_SQL)})"
    )
    return int(status.split()[-1])


async def last_scheduled(conn: asyncpg.Connection) -> dict[str, datetime]:
    """Each job's latest handled fire time."""
    rows = await conn.fetch(
        "SELECT job, max(scheduled_at) AS at FROM job_runs "
        "WHERE trigger <> 'manual' AND scheduled_at IS NOT NULL GROUP BY job"
    )
    return {r["job"]: r["at"] for r in rows}


async def latest(conn: asyncpg.Connection) -> dict[str, JobRun]:
    """Each job's newest run."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (job) {_COLUMNS} FROM job_runs ORDER BY job, started_at DESC"
    )
    return {r["job"]: _run(r) for r in rows}


async def runs(
    conn: asyncpg.Connection,
    job: str | None = None,
    outcome: Outcome | None = None,
    limit: int = 100,
) -> list[JobRun]:
    """Runs newest first, of one job and/or one outcome."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM job_runs WHERE ($1::text IS NULL OR job = $1) "
        "AND ($2::text IS NULL OR outcome = $2) ORDER BY started_at DESC LIMIT $3",
        job,
        outcome.value if outcome else None,
        limit,
    )
    return [_run(r) for r in rows]


async def get(conn: asyncpg.Connection, run_id: uuid.UUID) -> JobRun | None:
    """One run, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM job_runs WHERE id = $1", run_id)
    return _run(row) if row else None
