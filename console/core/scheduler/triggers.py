"""Schedule expressions (:mod:`console.cron`) as APScheduler cron triggers, and the last fire
time a stretch of time without a scheduler passed over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from console.cron import parse_schedule

# How far back a newly started scheduler looks for a fire time it missed.
LOOKBACK = timedelta(days=1)


def cron_trigger(expr: str) -> CronTrigger:
    """The UTC trigger of a valid 5-field cron or Quartz ``expr`` (weekdays as cron numbers
    them, not as APScheduler 3's ``from_crontab`` does)."""
    f = parse_schedule(expr)
    return CronTrigger(
        year=f.year,
        month=f.month,
        day=f.day,
        day_of_week=f.day_of_week,
        hour=f.hour,
        minute=f.minute,
        second=f.second,
        timezone=UTC,
    )


def last_fire(
    trigger: CronTrigger, now: datetime, after: datetime | None = None
) -> datetime | None:
    """The latest fire time strictly before ``now`` and strictly after ``after`` (default:
    :data:`LOOKBACK` ago), or None."""
    start = after + timedelta(microseconds=1) if after else now - LOOKBACK
    latest = None
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest
