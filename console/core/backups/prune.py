"""Pruning: apply the retention plan (:mod:`console.core.backups.retention`) to every tenant.

Each tenant with something to remove is one operation ``prune`` (lock, one audit row per
removed backup naming its files and the reason, events). Under the lock the tenant's plan is
made again from fresh catalog rows, so a backup that finished meanwhile is accounted for. A
removal marks the row ``expired`` and deletes its files in one transaction, newest link first,
so the catalog never shows a kept link whose parent is gone. A dry run plans only.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.core.backups import catalog
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.manifest import manifest_path
from console.core.backups.retention import Removal, RetentionPlan, RetentionPolicy, plan
from console.core.db import Database
from console.core.errors import ConsoleError
from console.core.events import EventSink, discard
from console.core.operations import Operation, OperationRunner
from console.core.tenants.registry import Registry, Tenant, TenantStatus


def files_of(record: BackupRecord) -> tuple[Path, ...]:
    """What a backup occupies on disk: a full's file and its manifest beside it, or an
    incremental's directory (nothing for a row without a location)."""
    if record.location is None:
        return ()
    if record.kind is BackupKind.INCREMENTAL:
        return (record.location,)
    return (record.location, manifest_path(record.location, incremental=False))


@dataclass(frozen=True)
class PrunedBackup:
    """One backup a prune removed (or, in a dry run, would remove)."""

    tenant: str
    backup: BackupRecord
    files: tuple[Path, ...]
    reason: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "id": str(self.backup.id),
            "kind": self.backup.kind.value,
            "covers_until": self.backup.covers_until.isoformat()
            if self.backup.covers_until
            else None,
            "bytes": self.backup.bytes,
            "files": [str(f) for f in self.files],
            "reason": self.reason,
        }


@dataclass
class PruneReport:
    """What a prune did (``dry_run``: what it would do) at ``now``."""

    dry_run: bool
    now: datetime
    removed: list[PrunedBackup] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def freed_bytes(self) -> int:
        """Stored bytes the removed backups held."""
        return sum(p.backup.bytes or 0 for p in self.removed)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "removed": [p.as_json() for p in self.removed],
            "freed_bytes": self.freed_bytes,
            "notes": self.notes,
            "failures": self.failures,
        }


class Pruner:
    """Applies a retention policy to the backups of every tenant."""

    def __init__(
        self, db: Database, runner: OperationRunner, registry: Registry, policy: RetentionPolicy
    ) -> None:
        self._db = db
        self._runner = runner
        self._registry = registry
        self.policy = policy

    async def prune(
        self, *, dry_run: bool = False, now: datetime | None = None, sink: EventSink = discard
    ) -> PruneReport:
        """Remove (``dry_run``: list) every backup retention lets go at ``now`` (default: the
        current time); one tenant's failure is reported and the others go on."""
        if not dry_run:
            self._runner.refuse_if_read_only("backups prune")
        report = PruneReport(dry_run, now or datetime.now(UTC))
        for tenant, planned in await self._plans(report.now):
            if planned.notes:
                report.notes[tenant.key] = list(planned.notes)
            if not planned.removals:
                continue
            if dry_run:
                report.removed.extend(_pruned(tenant, r) for r in planned.removals)
                continue
            try:
                async with self._runner.run("prune", tenant.key, sink) as op:
                    op.tenant_id = tenant.id
                    await self._prune_tenant(op, tenant, report)
            except ConsoleError as exc:
                report.failures[tenant.key] = exc.message
        return report

    async def _plans(self, now: datetime) -> list[tuple[Tenant, RetentionPlan]]:
        async with self._db.acquire() as conn:
            tenants = await self._registry.list(conn, with_config=False)
            records = await catalog.history(conn, include_expired=False)
        by_tenant: dict[Any, list[BackupRecord]] = defaultdict(list)
        for record in records:
            by_tenant[record.tenant_id].append(record)
        return [
            (tenant, self._plan(tenant, by_tenant[tenant.id], now))
            for tenant in tenants
            if by_tenant[tenant.id]
        ]

    def _plan(self, tenant: Tenant, records: list[BackupRecord], now: datetime) -> RetentionPlan:
        archived_at = tenant.updated_at if tenant.status is TenantStatus.ARCHIVED else None
        return plan(records, self.policy, now, tenant.status, archived_at)

    async def _prune_tenant(self, op: Operation, tenant: Tenant, report: PruneReport) -> None:
        async with self._db.acquire() as conn:
            fresh = await self._registry.require(conn, tenant.key)
            records = await catalog.history(conn, tenant.id, include_expired=False)
        for removal in self._plan(fresh, records, report.now).removals:
            pruned = _pruned(tenant, removal)
            message = f"removing {removal.record.kind.value} {removal.record.id}"
            async with op.step("remove", message) as step:
                step.details.update(pruned.as_json())
                await self._remove(pruned)
            report.removed.append(pruned)

    async def _remove(self, pruned: PrunedBackup) -> None:
        async with self._db.acquire() as conn, conn.transaction():
            expired = await conn.fetchval(
                "UPDATE public.backups SET status = 'expired', expired_at = clock_timestamp() "
                "WHERE id = $1 AND status = 'succeeded' RETURNING id",
                pruned.backup.id,
            )
            if expired is not None:
                await asyncio.to_thread(_delete, pruned.files)


def _pruned(tenant: Tenant, removal: Removal) -> PrunedBackup:
    return PrunedBackup(tenant.key, removal.record, files_of(removal.record), removal.reason)


def _delete(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
