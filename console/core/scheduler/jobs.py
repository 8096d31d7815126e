"""What each scheduled job does, over the console's services: the jobs of ``[schedule]`` this
console can run (a job whose service is not built here is left out), each with its misfire
grace and a result: one summary line plus the tenants that failed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.core.backups.catalog import BackupKind
from console.core.tenants.registry import TenantStatus

if TYPE_CHECKING:
    from console.core.service import ConsoleService

HOUR_S = 3600


@dataclass(frozen=True)
class JobResult:
    """A finished run: a summary line, and what failed per tenant (key -> error)."""

    summary: str
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One scheduled job: its name (its ``[schedule]`` key), schedule expression, how late it
    may still start (seconds), and what it runs."""

    name: str
    schedule: str
    grace_s: int
    description: str
    run: Callable[[], Awaitable[JobResult]]


def build_jobs(service: ConsoleService) -> dict[str, Job]:
    """The jobs this console runs, by name, in schedule order."""
    schedule = service.settings.schedule
    jobs = [
        Job(
            "full_backup",
            schedule.full_backup,
            HOUR_S,
            "full backups of every ACTIVE tenant",
            lambda: _backups(service, BackupKind.FULL),
        ),
        Job(
            "incremental_backup",
            schedule.incremental_backup,
            HOUR_S,
            "incremental backups of every ACTIVE tenant",
            lambda: _backups(service, BackupKind.INCREMENTAL),
        ),
        Job(
            "retention_prune",
            schedule.retention_prune,
            HOUR_S,
            "remove the backups retention lets go",
            lambda: _prune(service),
        ),
        Job(
            "restore_drill",
            schedule.restore_drill,
            HOUR_S,
            "restore-test a sample of tenants' newest backups",
            lambda: _drill(service),
        ),
    ]
    # Jobs over services other issues build: (name, schedule, grace, text, service, method).
    optional: list[tuple[str, str, int, str, str, str]] = [
        ("schema_stats", schedule.schema_stats, 600, "schema statistics", "stats", "collect"),
        ("health_check", schedule.health_check, 30, "cluster health checks", "health", "check"),
        (
            "purge_replaced",
            schedule.purge_replaced,
            HOUR_S,
            "drop replaced schemas past their keep time",
            "backups",
            "purge_replaced",
        ),
    ]
    for name, expr, grace, text, owner, method in optional:
        call = getattr(getattr(service, owner, None), method, None)
        if call is not None:
            jobs.append(Job(name, expr, grace, text, _summarised(call)))
    return {job.name: job for job in jobs}


async def _backups(service: ConsoleService, kind: BackupKind) -> JobResult:
    keys = [t.key for t in await service.tenants(TenantStatus.ACTIVE)]
    if not keys:
        return JobResult(f"no ACTIVE tenants: no {kind.value} backups to take")
    report = await service.backups.run(keys, kind, reason="scheduled")
    failures = {o.key: o.error or "failed" for o in report.failures}
    return JobResult(
        f"{len(report.succeeded)} of {len(keys)} tenant(s) backed up ({kind.value}), "
        f"{len(failures)} failed, {report.bytes} bytes in {report.elapsed_s:.1f} s",
        failures,
    )


async def _prune(service: ConsoleService) -> JobResult:
    report = await service.backups.prune()
    return JobResult(
        f"{len(report.removed)} backup(s) removed, {report.freed_bytes} bytes freed",
        dict(report.failures),
    )


async def _drill(service: ConsoleService) -> JobResult:
    drill = getattr(service.backups, "drill", None)
    if drill is not None:  # issue 14's restore drill, where it is built
        return await _summarised(lambda: drill(sample=service.settings.backup.verify_sample))()
    report = await service.backups.verify_sample(restore_test=True)
    failures = {t.key: t.failure or "failed" for t in report.failures}
    return JobResult(
        f"{len(report.tenants)} tenant(s) restore-tested, {len(failures)} failed "
        f"in {report.elapsed_s:.1f} s",
        failures,
    )


def _summarised(call: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[JobResult]]:
    """A job over a service method whose result this module does not know: the summary is the
    result's own ``summary()`` / ``summary`` if it has one, its failures its ``failures``."""

    async def run() -> JobResult:
        result = await call()
        summary = getattr(result, "summary", None)
        text = summary() if callable(summary) else summary
        failures = getattr(result, "failures", None)
        return JobResult(
            str(text) if text else "done",
            dict(failures) if isinstance(failures, dict) else {},
        )

    return run
