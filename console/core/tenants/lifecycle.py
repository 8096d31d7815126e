"""Tenant lifecycle: deactivate, reactivate, offboard (architecture §4); provisioning is
:mod:`console.core.tenants.provision`.

Every operation runs through :class:`OperationRunner` (validation, read-only guard, advisory
lock, audit, events); which status each starts from and leaves is :mod:`console.core.states`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.core.backups import exports
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.check import record_check
from console.core.backups.pipeline import sha256_of
from console.core.backups.service import BackupService
from console.core.db import Database
from console.core.errors import InvalidInput
from console.core.events import EventSink, discard
from console.core.identifiers import schema_for
from console.core.operations import Operation, OperationRunner
from console.core.pools.service import PoolService
from console.core.states import Action, allowed_from, leaves
from console.core.tenants.drain import drain
from console.core.tenants.provision import note_unmanaged_pool
from console.core.tenants.registry import Registry, Tenant, TenantStatus
from console.core.tenants.schema import (
    drop_schema,
    grant_access,
    revoke_usage,
    schema_revision,
)

DRAIN_TIMEOUT_MAX_S = 86400


def check_drain_timeout(value: float | str) -> float:
    """The drain timeout of deactivate/offboard (``--timeout``) in seconds: a number from 0 to
    :data:`DRAIN_TIMEOUT_MAX_S`, else InvalidInput naming the value and the range."""
    try:
        seconds = float(str(value).strip())
    except ValueError:
        raise InvalidInput(
            f"--timeout {value!r} is not a number: give seconds between 0 and {DRAIN_TIMEOUT_MAX_S}"
        ) from None
    if not 0 <= seconds <= DRAIN_TIMEOUT_MAX_S:
        raise InvalidInput(
            f"--timeout must be between 0 and {DRAIN_TIMEOUT_MAX_S} seconds, got {seconds:g}"
        )
    return seconds


@dataclass
class OffboardReport:
    """What an offboarding left behind and where."""

    tenant: str
    backup: BackupRecord | None
    audit_export: Path
    audit_sha256: str
    audit_entries: int
    durations_ms: dict[str, float] = field(default_factory=dict)
    report_path: Path | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "backup": self.backup.as_json() if self.backup else None,
            "audit_export": {
                "path": str(self.audit_export),
                "sha256": self.audit_sha256,
                "entries": self.audit_entries,
            },
            "durations_ms": self.durations_ms,
            "report": str(self.report_path) if self.report_path else None,
        }

    def as_text(self) -> str:
        """Human-readable report."""
        lines = [f"Offboarding report for tenant {self.tenant}"]
        if self.backup:
            lines += [
                f"  backup      {self.backup.location}",
                f"    size      {self.backup.bytes:,} bytes",
                f"    sha256    {self.backup.sha256}",
                f"    verified  {self.backup.verify_result or 'no'}",
            ]
        else:
            lines.append("  backup      (taken by an earlier, interrupted run)")
        lines += [
            f"  audit log   {self.audit_export} ({self.audit_entries} entries)",
            f"    sha256    {self.audit_sha256}",
            "  durations   " + ", ".join(f"{k} {v:.0f} ms" for k, v in self.durations_ms.items()),
        ]
        if self.report_path:
            lines.append(f"  report      {self.report_path}")
        return "\n".join(lines)


class Lifecycle:
    """Deactivate, reactivate and offboard tenants on one cluster (provisioning:
    :class:`~console.core.tenants.provision.Provisioner`)."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        registry: Registry,
        backups: BackupService,
        app_role: str,
        lock_timeout: float,
        pools: PoolService | None = None,
    ) -> None:
        self._db = db
        self._runner = runner
        self._registry = registry
        self._backups = backups
        self._app_role = app_role
        self._lock_timeout_ms = str(int(lock_timeout * 1000))
        self._pools = pools

    # -- deactivate / reactivate ------------------------------------------------------------

    def steps(self, action: str, key: str, timeout: float, force: bool) -> list[str]:
        """What ``action`` (``deactivate`` or ``offboard``) will do to tenant ``key`` with this
        drain ``timeout`` and ``force``, step by step in the order :meth:`deactivate` and
        :meth:`offboard` run them (for a confirmation that shows exactly what happens)."""
        schema = schema_for(key)
        first = {
            "deactivate": [
                "take a final pg_dump backup of the schema (sha256 recorded)",
                "mark the tenant DEACTIVATING and revoke the application role's access",
            ],
            "offboard": [
                "take a pg_dump backup and verify it (checksum, pg_restore --list)",
                "mark the tenant OFFBOARDING and revoke the application role's access",
            ],
        }[action]
        if self._pools is None:
            pool = ["PgBouncer is not configured: no pool steps"]
        else:
            pool = [
                f"PgBouncer: disable {schema} (no new clients), then pause it (waits for "
                "in-flight transactions; "
                + ("kills them at the timeout)" if force else "fails at the timeout)")
            ]
        drain = (
            f"wait up to {timeout:g}s"
            + ("" if self._pools is None else " (with the pause)")
            + " for sessions holding locks on its tables, then "
            + ("terminate them" if force else "fail and restore access")
        )
        last = {
            "deactivate": ["mark the tenant INACTIVE (reactivate restores access)"],
            "offboard": [
                "export the tenant's audit log as JSON next to the backup",
                f"DROP schema {schema} and all its data — this cannot be undone here",
                *([] if self._pools is None else [f"remove the PgBouncer alias {schema}"]),
                "mark the tenant ARCHIVED and write the offboarding report",
            ],
        }[action]
        return [*first, *pool, drain, *last]

    async def deactivate(
        self, key: str, timeout: float, force: bool = False, sink: EventSink = discard
    ) -> Tenant:
        """Final backup, block the app role, drain lock holders, then INACTIVE."""
        check_drain_timeout(timeout)
        async with self._runner.run("deactivate", key, sink) as op:
            tenant = await op.tenant(Action.DEACTIVATE)
            note_unmanaged_pool(op, self._pools)
            if tenant.status is TenantStatus.ACTIVE:
                self._backups.require_ready()
                await self._backups.take(op, tenant, BackupKind.FULL, "deactivate")
            blocked = await self._block(op, tenant, leaves(Action.DEACTIVATE, "block"))
            try:
                await self._quiesce(op, blocked, timeout, force)
            except Exception:
                if self._pools is not None:
                    await self._pools.unblock(op, blocked)
                await self._unblock(op, blocked, leaves(Action.DEACTIVATE, "rollback"))
                raise
            async with op.step("finalize", "marking the tenant INACTIVE"):
                async with self._db.acquire() as conn:
                    return await self._registry.transition(
                        conn,
                        blocked,
                        leaves(Action.DEACTIVATE, "finalize"),
                        {leaves(Action.DEACTIVATE, "block")},
                    )

    async def reactivate(self, key: str, sink: EventSink = discard) -> Tenant:
        """Grant the application role access again and mark the tenant ACTIVE."""
        async with self._runner.run("reactivate", key, sink) as op:
            tenant = await op.tenant(Action.REACTIVATE)
            note_unmanaged_pool(op, self._pools)
            if self._pools is not None:
                await self._pools.unblock(op, tenant)
            async with op.step("grant", f"granting {self._app_role} access again") as step:
                async with self._db.acquire() as conn, conn.transaction():
                    step.details["tables_granted"] = await grant_access(
                        conn, tenant.schema_name, self._app_role
                    )
                    return await self._registry.transition(
                        conn,
                        tenant,
                        leaves(Action.REACTIVATE, "grant"),
                        allowed_from(Action.REACTIVATE),
                    )

    # -- offboard ----------------------------------------------------------------------------

    async def offboard(
        self, key: str, timeout: float, force: bool = False, sink: EventSink = discard
    ) -> OffboardReport:
        """Verified backup, block, drain, export the audit log, drop the schema, ARCHIVED."""
        check_drain_timeout(timeout)
        async with self._runner.run("offboard", key, sink) as op:
            tenant = await op.tenant(Action.OFFBOARD)
            note_unmanaged_pool(op, self._pools)
            durations: dict[str, float] = {}
            async with self._db.acquire() as conn:
                schema_exists, _ = await schema_revision(conn, tenant.schema_name)
            backup: BackupRecord | None = None
            if schema_exists:
                self._backups.require_ready()
                started = time.perf_counter()
                backup = await self._checked_backup(op, tenant)
                durations["backup"] = _ms(started)
                previous = tenant.status
                blocked = await self._block(op, tenant, leaves(Action.OFFBOARD, "block"))
                try:
                    started = time.perf_counter()
                    await self._quiesce(op, blocked, timeout, force)
                    durations["drain"] = _ms(started)
                except Exception:
                    if self._pools is not None and previous is TenantStatus.ACTIVE:
                        await self._pools.unblock(op, blocked)
                    if previous is not TenantStatus.OFFBOARDING:
                        await self._unblock(op, blocked, previous)
                    raise
                tenant = blocked
            async with op.step("export_audit", "exporting the audit log") as step:
                started = time.perf_counter()
                async with self._db.acquire() as conn:
                    path, digest = await exports.export_audit(conn, self._backups.root, tenant)
                entries = len(json.loads(path.read_text())["entries"])
                durations["export_audit"] = _ms(started)
                step.details.update(path=str(path), sha256=digest, entries=entries)
            if schema_exists:
                async with op.step("drop", f"dropping schema {tenant.schema_name}"):
                    started = time.perf_counter()
                    async with self._db.acquire() as conn, conn.transaction():
                        await conn.execute(
                            "SELECT set_config('lock_timeout', $1, true)", self._lock_timeout_ms
                        )
                        await drop_schema(conn, tenant.schema_name)
                    durations["drop"] = _ms(started)
            if self._pools is not None:
                await self._pools.remove_alias(op, tenant)
            report = OffboardReport(key, backup, path, digest, entries, durations)
            async with op.step("archive", "marking the tenant ARCHIVED") as step:
                folder = exports.tenant_dir(self._backups.root, key)
                report.report_path = folder / f"{path.stem[:-6]}-offboard"
                report.report_path.with_suffix(".json").write_text(
                    json.dumps(report.as_json(), indent=2)
                )
                report.report_path.with_suffix(".txt").write_text(report.as_text() + "\n")
                step.details["report"] = str(report.report_path) + ".json"
                step.details["report_sha256"] = sha256_of(report.report_path.with_suffix(".json"))
                async with self._db.acquire() as conn:
                    await self._registry.transition(
                        conn,
                        tenant,
                        leaves(Action.OFFBOARD, "archive"),
                        {leaves(Action.OFFBOARD, "block")},
                    )
            return report

    async def _checked_backup(self, op: Operation, tenant: Tenant) -> BackupRecord:
        """Offboard's final full backup, checked (sha256, decrypt, pg_restore --list) and the
        check recorded: the schema is dropped only after it passes."""
        taken = await self._backups.take(op, tenant, BackupKind.FULL, "offboard")
        async with op.step("check_backup", "checking the backup") as step:
            await self._backups.check_stored(taken.record)
            async with self._db.acquire() as conn:
                await record_check(conn, taken.record.id, "checksum", "ok")
            step.details.update(id=str(taken.record.id), level="checksum", result="ok")
        return dataclasses.replace(taken.record, verify_result="ok", verify_level="checksum")

    # -- shared steps ------------------------------------------------------------------------

    async def _block(self, op: Operation, tenant: Tenant, to: TenantStatus) -> Tenant:
        async with op.step("block", f"{to}: revoking {self._app_role}'s access"):
            async with self._db.acquire() as conn, conn.transaction():
                moved = await self._registry.transition(conn, tenant, to, {tenant.status, to})
                await revoke_usage(conn, tenant.schema_name, self._app_role)
                return moved

    async def _unblock(self, op: Operation, tenant: Tenant, back_to: TenantStatus) -> None:
        async with op.step("rollback", f"restoring access; tenant back to {back_to}"):
            async with self._db.acquire() as conn, conn.transaction():
                if back_to is TenantStatus.ACTIVE:
                    await grant_access(conn, tenant.schema_name, self._app_role)
                await self._registry.transition(conn, tenant, back_to, {tenant.status})

    async def _quiesce(self, op: Operation, tenant: Tenant, timeout: float, force: bool) -> None:
        """Block and pause the tenant's PgBouncer pool (when managed), then drain the database
        side; both within the one ``timeout`` the operator gave."""
        deadline = time.monotonic() + timeout
        if self._pools is not None:
            await self._pools.block(op, tenant, timeout, force)
        await drain(op, self._db, tenant, timeout, force, deadline)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
