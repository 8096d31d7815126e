"""The Jobs screen (``j``): the schedule against an injected clock, a manual run from the screen
landing in the history, the refusals (read-only, job busy), the detail of a run; and the TUI
hosting the scheduler: the header's ``sched:`` field, and nothing left behind on quit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from helpers import fast, tenants_screen, wait_for
from test_ui import SIZE, Notes, table_column
from textual.pilot import Pilot
from textual.widgets import Static

from console.config import SchedulerSettings, Settings
from console.core import locks
from console.core.scheduler import history
from console.core.scheduler.history import Outcome, Trigger
from console.core.scheduler.leader import LABEL_PREFIX, current_leader
from console.core.scheduler.service import Role, SchedulerService
from console.core.service import ConsoleService
from console.ui.app import GoConsoleApp
from console.ui.screens.jobs import ConfirmRunScreen, JobsScreen, RunDetailScreen

NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)
CHEAP_JOB = "purge_replaced"  # nothing to purge: a quick, successful run


async def jobs_screen(pilot: Pilot[Any]) -> JobsScreen:
    """Open the Jobs area from the tenants screen and wait for its first poll."""
    app = pilot.app
    await tenants_screen(pilot)
    await pilot.press("j")

    def ready() -> JobsScreen | None:
        screen = app.screen
        return screen if isinstance(screen, JobsScreen) and screen.loaded else None

    screen = await wait_for(pilot, ready, "the jobs screen")
    assert isinstance(screen, JobsScreen)
    await pilot.pause()
    return screen


async def cursor_on(pilot: Pilot[Any], screen: JobsScreen, job: str) -> None:
    """Move the schedule's cursor down to ``job``."""
    while screen.focused_job() != job:
        await pilot.press("down")


def with_clock(svc: ConsoleService) -> ConsoleService:
    svc.scheduler = SchedulerService(svc, clock=lambda: NOW)  # type: ignore[misc]
    return svc


async def test_schedule_shows_each_job_with_its_next_run(ui_service: ConsoleService) -> None:
    app = GoConsoleApp(with_clock(ui_service), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        screen = await jobs_screen(pilot)
        assert table_column(screen, "#jobs-schedule", 0) == list(ui_service.scheduler.jobs)
        schedule = dict(
            zip(
                table_column(screen, "#jobs-schedule", 0),
                zip(
                    table_column(screen, "#jobs-schedule", 1),
                    table_column(screen, "#jobs-schedule", 2),
                    table_column(screen, "#jobs-schedule", 3),
                    strict=True,
                ),
                strict=True,
            )
        )
        settings = ui_service.settings.schedule
        assert schedule["full_backup"] == (settings.full_backup, "11-27 02:00", "never run")
        assert schedule["health_check"][1] == "11-26 12:01"
        assert schedule["incremental_backup"][1] == "11-26 16:00"
        leader = str(screen.query_one("#jobs-leader", Static).render())
        assert leader == "no scheduler leads the cluster · this console: off"
        assert "sched: off" in str(app.screen.query_one("#scheduler", Static).render())


async def test_run_now_from_the_screen_lands_in_the_history(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    notes = Notes()
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await jobs_screen(pilot)
        assert screen.shown_runs() == []
        await cursor_on(pilot, screen, CHEAP_JOB)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRunScreen), "the dialog")
        await pilot.pause()
        await pilot.press("n")  # the safe answer: nothing runs
        await wait_for(pilot, lambda: notes.any("cancelled", "nothing was done"), "a cancel")
        assert await su.fetchval("SELECT count(*) FROM job_runs") == 0

        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRunScreen), "the dialog")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: notes.any("Run finished", CHEAP_JOB, "succeeded"), "a run")
        await wait_for(pilot, lambda: len(screen.shown_runs()) == 1, "the run in the history")
        (run,) = screen.shown_runs()
        assert (run.job, run.outcome, run.trigger) == (CHEAP_JOB, Outcome.SUCCEEDED, Trigger.MANUAL)
        outcome = table_column(screen, "#jobs-schedule", 3)[list(screen.jobs).index(CHEAP_JOB)]
        assert outcome == "succeeded"
        audit = await su.fetchval(
            "SELECT details->>'job' FROM public.tenant_audit_log WHERE action_type = 'jobs.run'"
        )
        assert audit == CHEAP_JOB

        # The outcome filter: nothing failed, so the history is empty until it cycles on.
        await pilot.press("o", "o", "o")  # running, succeeded, failed
        assert screen.outcome_filter is Outcome.FAILED
        await wait_for(pilot, lambda: screen.shown_runs() == [], "the failed runs only")
        await pilot.press("o", "o", "o", "o", "o")  # skipped, missed, any, running, succeeded
        await wait_for(pilot, lambda: len(screen.shown_runs()) == 1, "the succeeded run")


async def test_run_now_refused_while_the_job_runs_elsewhere(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    notes = Notes()
    assert await locks.try_lock(su, history.job_lock(CHEAP_JOB))  # another instance runs it
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await jobs_screen(pilot)
        await cursor_on(pilot, screen, CHEAP_JOB)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRunScreen), "the dialog")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(
            pilot, lambda: notes.any("Job busy", f"{CHEAP_JOB} is already running"), "busy"
        )
    assert await su.fetchval("SELECT count(*) FROM job_runs") == 0


async def test_read_only_refuses_run_now(
    ui_service: ConsoleService,
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    su: asyncpg.Connection,
) -> None:
    read_only = await make_service(settings=fast(settings), read_only=True)
    notes = Notes()
    app = GoConsoleApp(read_only)
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        screen = await jobs_screen(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: notes.any("jobs run refused", "read-only"), "a refusal")
        assert app.screen is screen  # no confirmation was asked
        screen.request_run(CHEAP_JOB)  # the palette's way in
        await wait_for(pilot, lambda: notes.any(f"jobs run {CHEAP_JOB}", "read-only"), "refusal")
        assert app.screen is screen
        assert screen.palette_commands() == []
    assert await su.fetchval("SELECT count(*) FROM job_runs") == 0


async def test_enter_on_a_run_shows_its_detail(
    ui_service: ConsoleService, su: asyncpg.Connection
) -> None:
    run_id = await history.begin(su, "full_backup", NOW, Trigger.SCHEDULE, "db-host", "ops@db")
    assert run_id is not None
    failures = {"acme": "pg_dump: connection lost", "bolt": "disk full"}
    await history.finish(su, run_id, Outcome.FAILED, "1 of 3 tenant(s) backed up", failures)
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await jobs_screen(pilot)
        assert [r.id for r in screen.shown_runs()] == [run_id]
        await pilot.press("tab")  # to the history
        await pilot.press("enter")
        detail = await wait_for(
            pilot,
            lambda: app.screen if isinstance(app.screen, RunDetailScreen) else None,
            "the run's detail",
        )
        assert isinstance(detail, RunDetailScreen)
        await pilot.pause()
        text = str(detail.query_one("#run-detail Static", Static).render())
        assert "outcome    failed" in text
        assert "1 of 3 tenant(s) backed up" in text
        assert "2 tenant(s) failed:\n  acme: pg_dump: connection lost\n  bolt: disk full" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on the jobs screen")


def scheduler_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running scheduler code (a job, the leader poll, a run)."""
    names = ("SchedulerService", "AsyncIOExecutor", "run_coroutine_job", "execute")
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and any(n in repr(task.get_coro()) for n in names)
    ]


async def test_hosted_scheduler_leads_and_quitting_leaves_nothing_behind(
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    su: asyncpg.Connection,
) -> None:
    hosting = dataclasses.replace(fast(settings), scheduler=SchedulerSettings(enabled=True))
    svc = await make_service(settings=hosting)
    await svc.init()
    app = GoConsoleApp(with_clock(svc))
    async with app.run_test(size=SIZE) as pilot:
        screen = await jobs_screen(pilot)
        await wait_for(pilot, lambda: svc.scheduler.role is Role.LEADER, "the leadership")
        header = screen.query_one("#scheduler", Static)
        await wait_for(
            pilot, lambda: str(header.render()).startswith("sched: leader"), "sched: leader"
        )
        leader = await current_leader(su)
        assert leader is not None and leader.who == f"{svc.actor.user}@{svc.actor.host}"
        await wait_for(
            pilot,
            lambda: (
                "this console: leader" in str(screen.query_one("#jobs-leader", Static).render())
            ),
            "the leader line",
        )
        await svc.scheduler.settle()  # the catch-ups of the start, recorded
    assert svc.scheduler.role is Role.OFF
    assert not svc.scheduler.leadership.held
    assert scheduler_tasks() == []
    assert await current_leader(su) is None
    sessions = await su.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1",
        f"{LABEL_PREFIX}%",
    )
    assert sessions == 0


async def test_read_only_console_hosts_no_scheduler(
    make_service: Callable[..., Awaitable[ConsoleService]],
    settings: Settings,
    su: asyncpg.Connection,
) -> None:
    hosting = dataclasses.replace(fast(settings), scheduler=SchedulerSettings(enabled=True))
    await (await make_service(settings=hosting)).init()
    reader = await make_service(settings=hosting, read_only=True)
    app = GoConsoleApp(reader)
    async with app.run_test(size=SIZE) as pilot:
        screen = await jobs_screen(pilot)
        assert "sched: off" in str(screen.query_one("#scheduler", Static).render())
        assert reader.scheduler.role is Role.OFF
    assert await current_leader(su) is None


async def test_header_adds_the_worst_health_state_once_checked(ui_service: ConsoleService) -> None:
    app = GoConsoleApp(ui_service)
    async with app.run_test(size=SIZE) as pilot:
        screen = await jobs_screen(pilot)
        field = screen.query_one("#scheduler", Static)
        assert str(field.render()) == "sched: off"  # no health check ran in this console yet
        report = await ui_service.health.check()
        expected = f"sched: off · health {report.state.value}"
        await wait_for(pilot, lambda: str(field.render()) == expected, expected)
