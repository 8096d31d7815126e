"""What each scheduled job does, over the console's services: every job of ``[schedule]``, each
with its misfire grace and a result: one summary line plus the tenants that failed."""

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
            "restore drills of a sample of tenants' newest backups",
            lambda: _drill(service),
        ),
        Job(
            "schema_stats",
            schedule.schema_stats,
            600,
            "schema statistics of every tenant",
            lambda: _stats(service),
        ),
        Job(
            "health_check",
            schedule.health_check,
            30,
            "cluster health checks, recorded as samples",
            lambda: _health(service),
        ),
        Job(
            "purge_replaced",
            schedule.purge_replaced,
            HOUR_S,
            "drop replaced schemas past their keep time",
            lambda: _purge_replaced(service),
        ),
    ]
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
    report = await service.backups.drill(sample=service.settings.backup.drill_sample)
    failures = {d.tenant: d.result for d in report.failures}
    return JobResult(f"{len(report.tenants)} tenant(s) drilled, {len(failures)} failed", failures)


async def _stats(service: ConsoleService) -> JobResult:
    run = await service.stats.collect()
    return JobResult(run.summary())


async def _health(service: ConsoleService) -> JobResult:
    report = await service.health.check(record=True)
    return JobResult(f"{report.state.value}: {len(report.checks)} check(s)")


async def _purge_replaced(service: ConsoleService) -> JobResult:
    report = await service.backups.purge_replaced()
    return JobResult(f"{len(report.dropped)} replaced schema(s) dropped")
