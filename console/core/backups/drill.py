"""Restore drills: validation that is real.

A drill restores a tenant's newest chain into a scratch schema ``tenant_<key>__drill_<stamp>``
on its own cluster (the steps of a restore: ``recover``, ``apply``, ``validate``; the live
schema, its pool and its status are never touched), drops it, and records each backup's verdict
at the ``restore`` level (``verified_at``, ``verify_result``, ``verify_level``): only a backup
that went through this (or ``backups verify --restore-test``) is shown as verified by a
restore. Each tenant is operation ``drill`` (lock, audit, events); one tenant's failure never
stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from console.core.backups.check import record_check
from console.core.backups.reading import BackupCorrupt
from console.core.backups.rebuild import ValidationFailed
from console.core.backups.report import BackupProgress
from console.core.backups.restore import Link, RestoreFailed
from console.core.backups.restore_report import DrillReport, DrillResult, RestoreReport
from console.core.backups.restorer import TenantRestorer
from console.core.backups.verify import RESTORE, Verifier, failure_result
from console.core.db import Database
from console.core.errors import ConsoleError, InvalidInput
from console.core.events import EventSink
from console.core.identifiers import validate_tenant_key
from console.core.operations import Operation, OperationRunner
from console.core.tenants.registry import Registry
from console.core.tenants.schema import drop_schema

DRILL = "drill"


class Driller:
    """Runs restore drills."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        restorer: TenantRestorer,
        verifier: Verifier,
        default_sample: int,
    ) -> None:
        self._db = db
        self._runner = runner
        self._restorer = restorer
        self._verifier = verifier
        self._default_sample = default_sample

    async def targets(self, keys: Sequence[str] | None, sample: int | None) -> list[str]:
        """``keys`` checked to exist, or ``sample`` random tenants with a succeeded backup."""
        if keys:
            for key in keys:
                validate_tenant_key(key)
            async with self._db.acquire() as conn:
                for key in keys:
                    await Registry().require(conn, key)
            return list(dict.fromkeys(keys))
        count = self._default_sample if sample is None else sample
        if count < 1:
            raise InvalidInput(f"the drill sample must be at least 1 tenant, got {count}")
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT t.key FROM public.tenants t WHERE EXISTS (SELECT 1 FROM public.backups b "
                "WHERE b.tenant_id = t.id AND b.status = 'succeeded') ORDER BY random() LIMIT $1",
                count,
            )
        return [r[0] for r in rows]

    async def drill(
        self,
        keys: Sequence[str] | None,
        sample: int | None,
        sink: EventSink,
        progress: BackupProgress | None,
    ) -> DrillReport:
        """Drill each target in turn."""
        targets = await self.targets(keys, sample)
        progress = progress or BackupProgress()
        progress.start(len(targets))
        report = DrillReport()
        for key in targets:
            result = await self._drill_one(key, sink)
            progress.finished_one(result.ok)
            report.tenants.append(result)
        return report

    async def _drill_one(self, key: str, sink: EventSink) -> DrillResult:
        outcome = DrillResult(key, "ok")
        started = time.perf_counter()
        try:
            async with self._runner.run(DRILL, key, sink) as op:
                links = await self._verifier.newest_chain(op, key)
                outcome.links = [str(link.record.id) for link in links]
                done = await self._rehearse(op, key, links, outcome)
                await self._record(op, links, done, outcome.result)
        except ConsoleError as exc:
            if outcome.ok:
                outcome.result = exc.message
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome

    async def _rehearse(
        self, op: Operation, key: str, links: list[Link], outcome: DrillResult
    ) -> int:
        """Build, validate, drop; returns how many links restored."""
        report = RestoreReport(key, DRILL)
        async with self._db.acquire() as conn:
            tenant = await Registry().require(conn, key)
        try:
            schema = await self._restorer.recover(op, tenant, links, report, DRILL)
            pointed = [Link(link.record, link.manifest, schema) for link in links]
            await self._restorer.apply(op, pointed, report)
            await self._restorer.validate(op, pointed[-1], report)
            assert report.validation is not None
            outcome.rows = report.validation.rows
        except (BackupCorrupt, RestoreFailed, ValidationFailed) as exc:
            outcome.result = failure_result(exc)
        finally:
            if report.recovery_schema is not None:
                async with self._db.acquire() as conn:
                    await drop_schema(conn, report.recovery_schema)
        return len(report.links) if not outcome.ok else len(links)

    async def _record(self, op: Operation, links: list[Link], done: int, result: str) -> None:
        async with op.step("record", "recording the verdicts") as step:
            verdicts = {}
            async with self._db.acquire() as conn, conn.transaction():
                for index, link in enumerate(links):
                    if index < done:
                        verdict = "ok"
                    elif index == done:
                        verdict = result
                    else:
                        verdict = f"chain-broken: backup {links[done].record.id} did not restore"
                    await record_check(conn, link.record.id, RESTORE, verdict)
                    verdicts[str(link.record.id)] = verdict
            step.details["results"] = verdicts
