"""Backups as the front ends use them (``service.backups``): run them over tenants, read the
catalog, check what is stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.config import BackupSettings, ScheduleSettings
from console.core.backups import catalog
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.backups.check import check_stored
from console.core.backups.drill import Driller
from console.core.backups.keys import load_identities, require_recipients
from console.core.backups.prune import Pruner, PruneReport
from console.core.backups.recovery import RestorePlan
from console.core.backups.replaced import PurgeReport, ReplacedSchema, list_replaced, purge
from console.core.backups.report import BackupOutcome, BackupProgress, BackupRunReport, fan_out
from console.core.backups.restore_report import DrillReport, RestoreReport
from console.core.backups.restorer import TenantRestorer, check_keep_days
from console.core.backups.retention import RetentionPolicy
from console.core.backups.summary import StalePolicy, TenantBackups, read_summaries
from console.core.backups.take import BackupWriter, Taken
from console.core.backups.verify import Verifier, VerifyReport
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec, Database
from console.core.errors import ConsoleError, InvalidInput, NotFound
from console.core.events import EventSink, discard
from console.core.hints import Field
from console.core.identifiers import validate_tenant_key
from console.core.migrations.tree import AlembicRunner
from console.core.operations import Operation, OperationRunner
from console.core.pools.service import PoolService
from console.core.states import Action
from console.core.tenants.registry import Registry, Tenant, TenantStatus

# Each backup holds its tenant's lock connection and a snapshot connection from the pool.
CONNECTIONS_PER_BACKUP = 2


@dataclass(frozen=True)
class BackupDetail:
    """One backup and its manifest (None for a running, failed or old-format backup)."""

    record: BackupRecord
    manifest: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**self.record.as_json(), "manifest": self.manifest}


@dataclass(frozen=True)
class RestoreContext:
    """What restores need besides the backups: the migrations path, the application role,
    the lock timeout of the switch, the drain timeout (the pause's default) and the pools."""

    alembic: AlembicRunner
    app_role: str = "app"
    lock_timeout_s: float = 5.0
    drain_timeout_s: float = 30.0
    pools: PoolService | None = None


class BackupService:
    """Full and incremental backups of tenants, and the catalog's reads."""

    def __init__(
        self,
        db: Database,
        spec: ConnectionSpec,
        binaries: PgBinaries,
        settings: BackupSettings,
        runner: OperationRunner,
        registry: Registry,
        root: Path,
        full_schedule: str = ScheduleSettings.full_backup,
        *,
        restore: RestoreContext | None = None,
    ) -> None:
        self._db = db
        self._full_schedule = full_schedule  # judges STALE (see summaries)
        self._binaries = binaries
        self.settings = settings
        self._runner = runner
        self._registry = registry
        self.root = root
        self.writer = BackupWriter(db, spec, binaries, settings, root)
        self.verifier = Verifier(db, spec, binaries, settings, runner, registry)
        self.pruner = Pruner(db, runner, registry, RetentionPolicy.from_settings(settings))
        self._restore = restore or RestoreContext(AlembicRunner(spec))
        self.restorer = TenantRestorer(
            db,
            spec,
            binaries,
            settings,
            runner,
            registry,
            self._restore.alembic,
            self._restore.app_role,
            self._restore.lock_timeout_s,
            self._restore.pools,
        )
        self.driller = Driller(db, runner, self.restorer, self.verifier, settings.drill_sample)

    def require_ready(self) -> None:
        """NotConfigured (exit 2) naming ``backup.recipients`` / ``backup.recipients_file``
        when encryption is on and no recipient is configured."""
        require_recipients(self.settings)

    def max_concurrency(self) -> int:
        """The most backups at once the connection pool serves."""
        return max(self._db.max_size // CONNECTIONS_PER_BACKUP, 1)

    def workers(self, concurrency: int | None) -> int:
        """The tenants worked on at once: ``concurrency`` (default ``backup.concurrency``),
        checked to be from 1 to :meth:`max_concurrency` (InvalidInput otherwise)."""
        workers = self.settings.concurrency if concurrency is None else concurrency
        if not 1 <= workers <= self.max_concurrency():
            raise InvalidInput(
                f"concurrency must be between 1 and {self.max_concurrency()} (each tenant "
                f"holds {CONNECTIONS_PER_BACKUP} of the pool's {self._db.max_size} connections),"
                f" got {workers}",
                field=Field.CONCURRENCY,
            )
        return workers

    async def run(
        self,
        keys: Sequence[str] | None,
        kind: BackupKind | None = None,
        *,
        concurrency: int | None = None,
        sink: EventSink = discard,
        progress: BackupProgress | None = None,
        reason: str = "manual",
    ) -> BackupRunReport:
        """Back up ``keys`` (None: every ACTIVE and INACTIVE tenant), ``concurrency`` at once
        (default ``backup.concurrency``); one tenant's failure never stops the others. ``kind``
        None: incremental where a chain can be extended, else full."""
        self._runner.refuse_if_read_only("backups run")
        self.require_ready()
        workers = self.workers(concurrency)
        targets = await self._targets(keys)
        started = time.perf_counter()
        progress = progress or BackupProgress()
        outcomes = await fan_out(
            targets,
            workers,
            progress,
            lambda key: self._backup_one(key, kind, sink, progress, reason),
            lambda outcome: outcome.ok,
        )
        return BackupRunReport(outcomes, time.perf_counter() - started)

    async def _targets(self, keys: Sequence[str] | None) -> list[str]:
        async with self._db.acquire() as conn:
            if keys is None:
                tenants = await self._registry.list(conn, with_config=False)
                return [
                    t.key
                    for t in tenants
                    if t.status in (TenantStatus.ACTIVE, TenantStatus.INACTIVE)
                ]
            for key in keys:
                validate_tenant_key(key)
                await self._registry.require(conn, key)
        return list(dict.fromkeys(keys))

    async def _backup_one(
        self,
        key: str,
        kind: BackupKind | None,
        sink: EventSink,
        progress: BackupProgress,
        reason: str,
    ) -> BackupOutcome:
        try:
            async with self._runner.run("backup", key, sink) as op:
                tenant = await op.tenant(Action.BACKUP)
                taken = await self.take(op, tenant, kind, reason, progress)
        except ConsoleError as exc:
            return BackupOutcome(key, None, exc.message)
        return BackupOutcome(key, taken.record, None, taken.why_full)

    async def take(
        self,
        op: Operation,
        tenant: Tenant,
        kind: BackupKind | None,
        reason: str,
        progress: BackupProgress | None = None,
    ) -> Taken:
        """One backup of ``tenant`` as the ``backup`` step of ``op`` (whose lock the caller
        holds): lifecycle's final backups and :meth:`run` both come here."""
        async with op.step("backup", f"{kind or 'full or incremental'} backup") as step:
            taken = await self.writer.take(
                op, tenant, kind, reason, progress.add_bytes if progress else None
            )
            record = taken.record
            step.details.update(
                id=str(record.id),
                kind=record.kind.value,
                parent=str(record.parent_id) if record.parent_id else None,
                location=str(record.location),
                bytes=record.bytes,
                raw_bytes=record.raw_bytes,
                sha256=record.sha256,
                encrypted=record.encrypted,
                compressed=record.compressed,
            )
            if taken.why_full:
                step.details["full_because"] = taken.why_full
        return taken

    async def check_stored(self, record: BackupRecord) -> None:
        """The checksum-level check of a stored backup (see :func:`check.check_stored`)."""
        async with self._db.acquire() as conn:
            manifest = await catalog.manifest_of(conn, record.id)
        if manifest is None:
            raise NotFound(f"backup {record.id} has no manifest (running, failed or old format)")
        await check_stored(record, manifest, self.settings, self._binaries)

    # -- verification and retention (console.core.backups.verify, .prune) -------------------

    async def verify(
        self,
        keys: Sequence[str] | None,
        *,
        restore_test: bool = False,
        concurrency: int | None = None,
        sink: EventSink = discard,
        progress: BackupProgress | None = None,
    ) -> VerifyReport:
        """Verify the newest chain of each of ``keys`` (None: every tenant with a succeeded
        backup) at the checksum level, or by a restore test; record each backup's verdict."""
        self._runner.refuse_if_read_only("backups verify")
        workers = self.workers(concurrency)
        targets = await self.verifier.targets(keys)
        return await self.verifier.verify(
            targets, restore_test=restore_test, workers=workers, sink=sink, progress=progress
        )

    async def prune(
        self, *, dry_run: bool = False, now: datetime | None = None, sink: EventSink = discard
    ) -> PruneReport:
        """Remove the backups retention lets go at ``now`` (``dry_run``: only list them)."""
        return await self.pruner.prune(dry_run=dry_run, now=now, sink=sink)

    # -- reads ------------------------------------------------------------------------------

    async def history(self, key: str | None = None, limit: int | None = None) -> list[BackupRecord]:
        """Backups newest first: one tenant's (``key``) or everyone's."""
        async with self._db.acquire() as conn:
            tenant_id = (await self._registry.require(conn, key)).id if key else None
            return await catalog.history(conn, tenant_id, limit)

    async def show(self, backup_id: str) -> BackupDetail:
        """One backup with its manifest; NotFound / InvalidInput for an unknown or malformed
        id."""
        try:
            parsed = uuid.UUID(backup_id)
        except ValueError:
            raise InvalidInput(
                f"{backup_id!r} is not a backup id (a UUID, as 'backups list' shows)"
            ) from None
        async with self._db.acquire() as conn:
            record = await catalog.get(conn, parsed)
            if record is None:
                raise NotFound(f"no backup with id {backup_id}")
            return BackupDetail(record, await catalog.manifest_of(conn, parsed))

    async def latest(self, key: str) -> BackupRecord | None:
        """The tenant's newest succeeded backup, or None."""
        for record in await self.history(key):
            if record.status is BackupStatus.SUCCEEDED:
                return record
        return None

    async def summaries(self, now: datetime | None = None) -> list[TenantBackups]:
        """Every tenant's backups at a glance, by key (:mod:`~console.core.backups.summary`):
        STALE when its newest full is older than ``schedule.full_backup``'s interval plus
        ``backup.stale_grace_hours`` at ``now`` (default: the current time)."""
        when = now or datetime.now(UTC)
        policy = StalePolicy.of(self._full_schedule, self.settings.stale_grace_hours, when)
        async with self._db.acquire() as conn:
            return await read_summaries(conn, policy, when)

    # -- restores (console.core.backups.restorer, .replaced, .drill) ----------------------------

    async def restore_plan(
        self, key: str, *, to: datetime | None = None, backup_id: str | None = None
    ) -> RestorePlan:
        """What restoring ``key`` to ``to`` (or to backup ``backup_id``) would do; refuses a
        chain with a missing, failed or failed-verification link, naming it."""
        return await self.restorer.plan(key, _aware(to), backup_id)

    async def restore(
        self,
        key: str,
        *,
        to: datetime | None = None,
        backup_id: str | None = None,
        keep_replaced_days: float | None = None,
        timeout: float | None = None,
        force: bool = False,
        sink: EventSink = discard,
    ) -> RestoreReport:
        """Restore ``key`` to ``to`` or to backup ``backup_id`` through a recovery schema,
        validated, then switched in (``timeout``: the pool's pause, default
        ``lifecycle.drain_timeout``; ``force``: kill what is still running at the timeout)."""
        self._runner.refuse_if_read_only("backups restore")
        self.require_ready_to_read()
        keep = (
            self.settings.keep_replaced_days if keep_replaced_days is None else keep_replaced_days
        )
        return await self.restorer.restore(
            key,
            to=_aware(to),
            backup_id=backup_id,
            keep_days=check_keep_days(keep),
            timeout=self._restore.drain_timeout_s if timeout is None else timeout,
            force=force,
            sink=sink,
        )

    async def discard_recovery(self, key: str, sink: EventSink = discard) -> list[str]:
        """Drop what a failed or stopped restore of ``key`` left (recovery schemas, a paused
        pool, the RESTORING status); returns the schemas dropped."""
        self._runner.refuse_if_read_only("restore discard")
        return await self.restorer.discard_recovery(key, sink)

    async def rollback(
        self,
        key: str,
        *,
        timeout: float | None = None,
        force: bool = False,
        sink: EventSink = discard,
    ) -> RestoreReport:
        """Switch the newest replaced schema of ``key`` back in (the same switch as a
        restore)."""
        self._runner.refuse_if_read_only("restore rollback")
        return await self.restorer.rollback(
            key,
            keep_days=self.settings.keep_replaced_days,
            timeout=self._restore.drain_timeout_s if timeout is None else timeout,
            force=force,
            sink=sink,
        )

    async def replaced(self, key: str | None = None) -> list[ReplacedSchema]:
        """Replaced schemas kept for rollback (one tenant's, or everyone's), oldest first."""
        async with self._db.acquire() as conn:
            if key is not None:
                await self._registry.require(conn, key)
            return await list_replaced(conn, key)

    async def purge_replaced(
        self, *, now: datetime | None = None, dry_run: bool = False, sink: EventSink = discard
    ) -> PurgeReport:
        """Drop the replaced schemas whose keep-until is past at ``now`` (``dry_run``: only
        list them); each drop audited under its tenant's lock."""
        if not dry_run:
            self._runner.refuse_if_read_only("backups purge-replaced")
        return await purge(self._db, self._runner, now or datetime.now(UTC), dry_run, sink)

    async def drill(
        self,
        keys: Sequence[str] | None = None,
        *,
        sample: int | None = None,
        sink: EventSink = discard,
        progress: BackupProgress | None = None,
    ) -> DrillReport:
        """Restore the newest chain of ``keys`` (or of ``sample`` random tenants, default
        ``backup.drill_sample``) into scratch schemas, validate, drop, and record each
        backup's verdict at the ``restore`` level."""
        self._runner.refuse_if_read_only("backups drill")
        self.require_ready_to_read()
        return await self.driller.drill(keys, sample, sink, progress)

    def require_ready_to_read(self) -> None:
        """NotConfigured naming ``backup.identity_file`` when encrypted backups cannot be
        decrypted (restores and drills read them back)."""
        if self.settings.encryption:
            load_identities(self.settings)


def _aware(when: datetime | None) -> datetime | None:
    """A timestamp without a zone taken as UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when
