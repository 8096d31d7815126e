"""What the Jobs screen shows of the scheduler: schedule rows, history rows, the leader line and
the detail of one run, as text (outcomes in words)."""

from __future__ import annotations

from datetime import datetime

from console.core.scheduler.history import JobRun, Outcome
from console.core.scheduler.leader import LeaderInfo
from console.core.scheduler.service import ScheduledJob

SCHEDULE_COLUMNS = (
    ("job", "Job"),
    ("schedule", "Schedule"),
    ("next", "Next run"),
    ("outcome", "Last outcome"),
    ("last", "Last run"),
)
HISTORY_COLUMNS = (
    ("started", "Started"),
    ("job", "Job"),
    ("trigger", "Trigger"),
    ("outcome", "Outcome"),
    ("took", "Took"),
    ("summary", "Summary"),
)
# The outcome filter's cycle: every outcome, then each one.
OUTCOME_FILTERS: tuple[Outcome | None, ...] = (None, *Outcome)


def when(at: datetime | None) -> str:
    """``11-26 02:00`` (UTC), or a dash."""
    return f"{at:%m-%d %H:%M}" if at else "-"


def took(run: JobRun) -> str:
    """How long a run took (``…`` while it runs, a dash for one that never started)."""
    if run.outcome is Outcome.RUNNING:
        return "…"
    if run.finished_at is None or run.outcome in (Outcome.SKIPPED, Outcome.MISSED):
        return "-"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


def schedule_cells(job: ScheduledJob) -> tuple[str, ...]:
    """One schedule row: job, expression, next run, last outcome, last run."""
    last = job.last_run
    return (
        job.name,
        job.schedule,
        when(job.next_run),
        last.outcome.value if last else "never run",
        when(last.started_at) if last else "-",
    )


def history_cells(run: JobRun) -> tuple[str, ...]:
    """One history row: started, job, trigger, outcome, duration, summary."""
    return (
        when(run.started_at),
        run.job,
        run.trigger.value,
        run.outcome.value,
        took(run),
        run.summary.splitlines()[0] if run.summary else "",
    )


def leader_line(leader: LeaderInfo | None, role: str) -> str:
    """Who leads the cluster, and this console's part (``off``: it hosts no scheduler)."""
    lead = f"leader {leader.describe()} UTC" if leader else "no scheduler leads the cluster"
    return f"{lead} · this console: {role}"


def filter_line(job: str | None, outcome: Outcome | None, shown: int) -> str:
    """The history's title: what it is filtered by, and how many runs are shown."""
    return (
        f"History (newest first): job {job or 'any'}, outcome {outcome or 'any'} · "
        f"{shown} run(s) · f: this job only, o: outcome, Enter: detail"
    )


def detail_lines(run: JobRun) -> list[str]:
    """Everything recorded of one run, then its per-tenant failures."""
    lines = [
        f"job        {run.job}",
        f"outcome    {run.outcome.value}",
        f"trigger    {run.trigger.value}",
        f"scheduled  {run.scheduled_at:%Y-%m-%d %H:%M:%S} UTC"
        if run.scheduled_at
        else "scheduled  - (run by hand)",
        f"started    {run.started_at:%Y-%m-%d %H:%M:%S} UTC",
        f"finished   {run.finished_at:%Y-%m-%d %H:%M:%S} UTC ({took(run)})"
        if run.finished_at
        else "finished   - (still running)",
        f"where      {run.host}, under leader {run.leader}",
        "",
        run.summary or "(no summary)",
        "",
    ]
    if run.failures:
        lines.append(f"{len(run.failures)} tenant(s) failed:")
        lines += [f"  {key}: {error}" for key, error in sorted(run.failures.items())]
    else:
        lines.append("no tenant failed")
    return lines
