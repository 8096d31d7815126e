"""Tenant lifecycle: provision, deactivate, reactivate, offboard (architecture §4).

Every operation runs through :class:`OperationRunner` (validation, read-only guard, advisory
lock, audit, events); which status each starts from and leaves is :mod:`console.core.states`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from console.config import LifecycleSettings
from console.core.backups.store import BackupRecord, BackupStore, sha256_of
from console.core.db import Database
from console.core.errors import InvalidInput, OperationFailed
from console.core.events import EventSink, discard
from console.core.identifiers import schema_for, validate_tenant_key
from console.core.migrations.tree import AlembicRunner, head_revision
from console.core.operations import Operation, OperationRunner
from console.core.pools.service import POOL_STEPS_SKIPPED, PoolService
from console.core.states import RESUMABLE, Action, allowed_from, leaves
from console.core.tenants.bulk import BATCH_SIZE, BulkProvisioner
from console.core.tenants.bulk_report import BulkProgress, BulkReport
from console.core.tenants.registry import Registry, Tenant, TenantStatus, display_name_for
from console.core.tenants.schema import (
    drop_schema,
    grant_access,
    revoke_usage,
    schema_revision,
    seed_initial_data,
    verify_access,
)
from console.core.tenants.template import TemplateDDL, TemplateSchema

_DRAIN_POLL_S = 0.1
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


@dataclass(frozen=True)
class Blocker:
    """A backend holding locks on a tenant's relations."""

    pid: int
    user: str
    application: str
    client: str
    state: str
    since: str

    def describe(self) -> str:
        """One line for error messages."""
        return (
            f"pid {self.pid} ({self.user}, {self.application or 'no app name'}, "
            f"{self.client}, {self.state} since {self.since})"
        )


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
                f"    verified  {'yes' if self.backup.verified else 'no'}",
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
    """Provision, deactivate, reactivate and offboard tenants on one cluster."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        registry: Registry,
        backups: BackupStore,
        template: TemplateSchema,
        alembic: AlembicRunner,
        app_role: str,
        cluster: str,
        lock_timeout: float,
        pools: PoolService | None = None,
    ) -> None:
        self._db = db
        self._runner = runner
        self._registry = registry
        self._backups = backups
        self._template = template
        self._alembic = alembic
        self._app_role = app_role
        self._cluster = cluster
        self._lock_timeout_ms = str(int(lock_timeout * 1000))
        self._pools = pools
        self._bulk = BulkProvisioner(
            db, runner, template, alembic, app_role, cluster, pools, self.provision
        )

    # -- provision -----------------------------------------------------------------------

    async def provision(
        self,
        key: str,
        display_name: str | None = None,
        sink: EventSink = discard,
        use_template: bool = True,
    ) -> Tenant:
        """Create (or finish creating) tenant ``key``; returns the ACTIVE tenant."""
        validate_tenant_key(key)  # before the display name, which defaults to the key
        name = display_name_for(key, display_name)
        async with self._runner.run("provision", key, sink) as op:
            async with self._db.acquire() as conn:
                check_key_free(key, await self._registry.get(conn, key))
            try:
                return await self._provision_steps(op, key, schema_for(key), name, use_template)
            except Exception:
                if op.tenant_id is not None:
                    async with self._db.acquire() as conn:
                        await conn.execute(
                            "UPDATE public.tenants SET status = 'FAILED' "
                            "WHERE id = $1 AND status = 'INITIALIZING'",
                            op.tenant_id,
                        )
                raise

    async def check_new_key(self, key: str) -> Tenant | None:
        """What :meth:`provision` checks before it starts, without starting: InvalidInput for a
        bad key or one already in use; the tenant an interrupted provision left (which
        provisioning finishes), else None."""
        validate_tenant_key(key)
        async with self._db.acquire() as conn:
            existing = await self._registry.get(conn, key)
        check_key_free(key, existing)
        return existing

    async def provision_many(
        self,
        keys: Sequence[str],
        sink: EventSink = discard,
        use_template: bool = True,
        concurrency: int = LifecycleSettings.provision_concurrency,
        names: Mapping[str, str] | None = None,
        progress: BulkProgress | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> BulkReport:
        """Provision many tenants in batches with the guarantees of :meth:`provision` and a
        fraction of its round trips (see :mod:`console.core.tenants.bulk`); keys an earlier
        run left INITIALIZING or FAILED are finished by :meth:`provision`. ``names`` maps keys
        to display names (default: the key); ``progress`` gets the report after each tenant."""
        return await self._bulk.run(
            keys, sink, use_template, concurrency, names, progress, batch_size
        )

    async def _provision_steps(
        self, op: Operation, key: str, schema: str, name: str, use_template: bool
    ) -> Tenant:
        async with op.step("register", "registering the tenant as INITIALIZING") as step:
            async with self._db.acquire() as conn:
                tenant = await self._registry.insert(conn, key, schema, name, self._cluster)
                if tenant is None:
                    existing = await self._registry.require(conn, key)
                    if existing.status not in RESUMABLE:
                        raise InvalidInput(f"tenant key {key!r} is already in use")
                    tenant = await self._registry.transition(
                        conn, existing, leaves(Action.PROVISION, "register"), RESUMABLE
                    )
                    step.details["resumed_from"] = existing.status.value
                    op.info(f"resuming a provision left in {existing.status}")
            op.tenant_id = tenant.id
            step.details.update(schema=schema, display_name=name)

        async with op.step("schema", f"building schema {schema}") as step:
            built, tables = await self._build_schema(op, tenant, use_template)
            step.details.update(built)

        async with op.step("init_data", "granting access and seeding initial data") as step:
            async with self._db.acquire() as conn, conn.transaction():
                step.details["tables_granted"] = await grant_access(
                    conn, schema, self._app_role, tables
                )
                await seed_initial_data(conn, schema, tenant.id)

        async with op.step("verify", f"verifying access as {self._app_role}") as step:
            async with self._db.acquire() as conn:
                step.details.update(await verify_access(conn, schema, tenant.id, self._app_role))

        if self._pools is not None:
            await self._pools.add_alias(op, tenant)
        self._note_unmanaged_pool(op)

        async with op.step("activate", "marking the tenant ACTIVE"), self._db.acquire() as conn:
            return await self._registry.transition(
                conn,
                tenant,
                leaves(Action.PROVISION, "activate"),
                {leaves(Action.PROVISION, "register")},
            )

    async def _build_schema(
        self, op: Operation, tenant: Tenant, use_template: bool
    ) -> tuple[dict[str, Any], list[str] | None]:
        """Build the schema; returns audit details and, for a clone, its table names."""
        head = head_revision("tenant")
        schema = tenant.schema_name
        async with self._db.acquire() as conn:
            exists, revision = await schema_revision(conn, schema)
            if exists and revision == head:
                op.info(f"schema {schema} is already at {head} (built by an earlier run)")
                return {"method": "existing", "revision": head}, None
            if exists:
                op.info(f"dropping leftover schema {schema} (revision {revision})")
                await drop_schema(conn, schema)
            ddl: TemplateDDL | str = (
                await self._template.ddl(conn) if use_template else "alembic path requested"
            )
            if isinstance(ddl, TemplateDDL):
                await self._template.clone(conn, ddl, schema, tenant.id)
                return {"method": "clone", "revision": ddl.revision}, ddl.tables
        if use_template:
            op.info(f"falling back to alembic: {ddl}")
        await asyncio.to_thread(self._alembic.upgrade_tenant, schema, str(tenant.id))
        return {"method": "alembic", "revision": head, "reason": ddl}, None

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
            self._note_unmanaged_pool(op)
            if tenant.status is TenantStatus.ACTIVE:
                async with op.step("backup", "final backup") as step:
                    backup = await self._backups.full_backup(tenant, reason="deactivate")
                    step.details.update(backup.as_json())
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
            self._note_unmanaged_pool(op)
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
            self._note_unmanaged_pool(op)
            durations: dict[str, float] = {}
            async with self._db.acquire() as conn:
                schema_exists, _ = await schema_revision(conn, tenant.schema_name)
            backup: BackupRecord | None = None
            if schema_exists:
                async with op.step("backup", "backup, then verify it") as step:
                    started = time.perf_counter()
                    backup = await self._backups.full_backup(tenant, reason="offboard")
                    backup = await self._backups.verify(backup)
                    durations["backup"] = _ms(started)
                    step.details.update(backup.as_json())
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
                    path, digest = await self._backups.export_audit(conn, tenant)
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
                report.report_path = self._backups.tenant_dir(key) / f"{path.stem[:-6]}-offboard"
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

    # -- shared steps ------------------------------------------------------------------------

    def _note_unmanaged_pool(self, op: Operation) -> None:
        """Say once, in the operation's progress, that its PgBouncer steps do not run."""
        if self._pools is None:
            op.info(POOL_STEPS_SKIPPED)

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
        await self._drain(op, tenant, timeout, force, deadline)

    async def _drain(
        self, op: Operation, tenant: Tenant, timeout: float, force: bool, deadline: float
    ) -> None:
        """Wait until no other backend holds locks on the tenant's tables, until ``deadline``
        (the end of the ``timeout`` the operator gave, shared with the pool pause)."""
        async with op.step("drain", f"waiting up to {timeout:g}s for lock holders") as step:
            async with self._db.acquire() as conn:
                blockers = await self.blockers(conn, tenant.schema_name)
                while blockers and time.monotonic() < deadline:
                    await asyncio.sleep(_DRAIN_POLL_S)
                    blockers = await self.blockers(conn, tenant.schema_name)
                if blockers and force:
                    for blocker in blockers:
                        op.info(f"terminating {blocker.describe()}")
                        await conn.execute("SELECT pg_terminate_backend($1)", blocker.pid)
                    step.details["terminated"] = [b.pid for b in blockers]
                    grace = time.monotonic() + 5.0
                    while blockers and time.monotonic() < grace:
                        await asyncio.sleep(_DRAIN_POLL_S)
                        blockers = await self.blockers(conn, tenant.schema_name)
                if blockers:
                    listing = "; ".join(b.describe() for b in blockers)
                    raise OperationFailed(
                        f"{len(blockers)} backend(s) still hold locks on {tenant.schema_name} "
                        f"after {timeout:g}s: {listing} — rerun with --force to terminate them "
                        "or with a longer --timeout"
                    )

    async def blockers(self, conn: asyncpg.Connection, schema: str) -> list[Blocker]:
        """Other backends holding locks on relations of ``schema`` (excluding this console)."""
        rows = await conn.fetch(
            """
            SELECT DISTINCT a.pid, coalesce(a.usename::text, '') AS usename,
                   coalesce(a.application_name, '') AS app,
                   coalesce(host(a.client_addr), 'local socket') AS client,
                   coalesce(a.state, '') AS state,
                   coalesce(a.xact_start, a.state_change, a.backend_start) AS since
            FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
              AND l.pid <> pg_backend_pid()
            ORDER BY a.pid
            """,
            schema,
        )
        return [
            Blocker(
                r["pid"],
                r["usename"],
                r["app"],
                r["client"],
                r["state"],
                r["since"].strftime("%H:%M:%S") if r["since"] else "?",
            )
            for r in rows
        ]


def check_key_free(key: str, existing: Tenant | None) -> None:
    """InvalidInput when ``key`` belongs to a tenant that provisioning cannot finish (only an
    INITIALIZING or FAILED one is finished)."""
    if existing is not None and existing.status not in RESUMABLE:
        raise InvalidInput(
            f"tenant key {key!r} is already in use (status {existing.status}); choose another key"
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
