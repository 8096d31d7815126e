"""Restoring one tenant to a point in time, rolling a restore back, discarding what a stopped
restore left (architecture: :mod:`~console.core.backups.recovery` names and plans,
:mod:`~console.core.backups.rebuild` builds and validates, :mod:`~console.core.backups.switch`
switches).

A restore is operation ``restore`` (lock, an audit row per step, events) with steps ``plan``
(choose and check the chain, drop what a stopped restore left, mark the tenant RESTORING),
``recover`` (the full into a new recovery schema), ``apply`` (the incrementals), ``validate``,
``switch`` and ``finish`` (the tenant back to its status; an ARCHIVED one INACTIVE). A failure
before the switch leaves the live schema untouched, the tenant back in its status and the
recovery schema for inspection (``discard_recovery`` drops it). A console that stops mid-way
leaves the tenant RESTORING on its original schema: a rerun or ``discard_recovery`` cleans up
(drops recovery schemas, resumes the pool, puts the status back).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from console.config import BackupSettings
from console.core.backups.keys import configured_identities
from console.core.backups.rebuild import build_full, mark, validate
from console.core.backups.recovery import (
    RECOVERY,
    REPLACED,
    RestorePlan,
    choose_chain,
    schema_prefix,
    side_schema,
    side_schemas,
    taken_names,
)
from console.core.backups.replaced import list_replaced
from console.core.backups.restore import ChainRestorer, Link
from console.core.backups.restore_report import RestoreReport
from console.core.backups.restoring import (
    begin_restoring,
    chain_links,
    check_unverified,
    end_restoring,
    status_before,
)
from console.core.backups.switch import Switcher, grants_usage, replaced_note
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec, Database
from console.core.errors import InvalidInput, NotFound
from console.core.events import EventSink, discard
from console.core.hints import Field, ListReplaced
from console.core.identifiers import validate_tenant_key
from console.core.migrations.tree import AlembicRunner, head_revision
from console.core.operations import Operation, OperationRunner
from console.core.pools.service import PoolService, check_pause_timeout
from console.core.states import Action, check
from console.core.tenants.registry import Registry, Tenant, TenantStatus
from console.core.tenants.schema import drop_schema

Gate = Callable[[str], Awaitable[None]]
KEEP_DAYS_MAX = 3650


def check_keep_days(value: float) -> float:
    """Days a replaced schema is kept: 0 to :data:`KEEP_DAYS_MAX`, else InvalidInput."""
    if not 0 <= value <= KEEP_DAYS_MAX:
        raise InvalidInput(
            f"keep must be between 0 and {KEEP_DAYS_MAX} days, got {value:g}",
            field=Field.KEEP_REPLACED,
        )
    return value


class TenantRestorer:
    """Restore, rollback and clean-up of one tenant's schema."""

    def __init__(
        self,
        db: Database,
        spec: ConnectionSpec,
        binaries: PgBinaries,
        settings: BackupSettings,
        runner: OperationRunner,
        registry: Registry,
        alembic: AlembicRunner,
        app_role: str,
        lock_timeout_s: float,
        pools: PoolService | None,
    ) -> None:
        self._db = db
        self._spec = spec
        self._binaries = binaries
        self._settings = settings
        self._runner = runner
        self._registry = registry
        self._alembic = alembic
        self._app_role = app_role
        self._pools = pools
        self.switcher = Switcher(db, app_role, lock_timeout_s, pools)
        # Awaited with each step's name before it starts (tests stop a restore there).
        self.between_steps: Gate | None = None

    def chain_restorer(self) -> ChainRestorer:
        """A ChainRestorer with the configured identities."""
        return ChainRestorer(self._binaries, configured_identities(self._settings))

    # -- plan ------------------------------------------------------------------------------

    async def plan(self, key: str, to: datetime | None, backup_id: str | None) -> RestorePlan:
        """The plan of a restore of ``key`` (nothing changes)."""
        validate_tenant_key(key)
        async with self._db.acquire() as conn:
            tenant = await self._registry.require(conn, key)
            check(Action.RESTORE, tenant)
            return await self._plan(conn, tenant, to, backup_id)

    async def _plan(
        self, conn: asyncpg.Connection, tenant: Tenant, to: datetime | None, backup_id: str | None
    ) -> RestorePlan:
        status = await status_before(conn, tenant)
        chain = await choose_chain(conn, tenant, to, backup_id)
        notes = []
        if status is TenantStatus.ARCHIVED:
            notes.append("pool sync adds its PgBouncer alias back; reactivate opens it")
        if tenant.status is TenantStatus.RESTORING:
            notes.append("an earlier restore stopped mid-way: its leftovers are dropped first")
        return RestorePlan(
            tenant.key,
            tenant.id,
            status,
            to,
            backup_id,
            tuple(chain),
            head_revision("tenant"),
            await self._pool_state(tenant),
            tuple(r.id for r in chain if r.verify_result is None),
            tuple(notes),
        )

    async def _pool_state(self, tenant: Tenant) -> str:
        if self._pools is None:
            return "not configured"
        return await self._pools.pool_state(tenant.schema_name)

    # -- restore ----------------------------------------------------------------------------

    async def restore(
        self,
        key: str,
        *,
        to: datetime | None,
        backup_id: str | None,
        keep_days: float,
        timeout: float,
        force: bool,
        sink: EventSink = discard,
    ) -> RestoreReport:
        """Restore ``key`` to ``to`` or to backup ``backup_id`` (see the module)."""
        check_keep_days(keep_days)
        check_pause_timeout(timeout)
        report = RestoreReport(key, "restore")
        async with self._runner.run("restore", key, sink) as op:
            tenant = await op.tenant(Action.RESTORE)
            plan = await self._plan_step(op, tenant, to, backup_id, report)
            tenant = await begin_restoring(self._db, tenant, plan.status)
            try:
                links = await chain_links(self._db, plan)
                recovery = await self.recover(op, tenant, links, report)
                links = [Link(link.record, link.manifest, recovery) for link in links]
                await self.apply(op, links, report)
                await self.validate(op, links[-1], report)
                await self._switch_step(
                    op,
                    tenant,
                    plan.status,
                    recovery,
                    keep_days,
                    timeout,
                    force,
                    report,
                    {"restored_from": [str(r.id) for r in plan.links]},
                )
            except Exception:
                await end_restoring(self._db, tenant, plan.status)
                raise
            await self._finish(op, tenant, plan.status, report, switched=True)
        return report

    async def _step_gate(self, name: str) -> None:
        if self.between_steps is not None:
            await self.between_steps(name)

    async def _plan_step(
        self,
        op: Operation,
        tenant: Tenant,
        to: datetime | None,
        backup_id: str | None,
        report: RestoreReport,
    ) -> RestorePlan:
        await self._step_gate("plan")
        started = time.perf_counter()
        async with op.step("plan", "choosing and checking the backups") as step:
            async with self._db.acquire() as conn:
                plan = await self._plan(conn, tenant, to, backup_id)
            step.details["dropped"] = await self._clean(op, tenant)
            await check_unverified(self._db, plan, self._settings, self._binaries)
            step.details.update(
                links=[str(r.id) for r in plan.links],
                reflects=plan.reflects.isoformat() if plan.reflects else None,
                status_before=plan.status.value,
            )
        report.plan = plan
        report.durations_ms["plan"] = _ms(started)
        return plan

    async def recover(
        self,
        op: Operation,
        tenant: Tenant,
        links: list[Link],
        report: RestoreReport,
        kind: str = RECOVERY,
    ) -> str:
        """Step ``recover``: the full of ``links`` into a new ``kind`` schema (its name is
        in ``report.recovery_schema`` as soon as chosen); returns the name."""
        await self._step_gate("recover")
        started = time.perf_counter()
        async with self._db.acquire() as conn:
            taken = await taken_names(conn, schema_prefix(tenant.key, kind))
            name = side_schema(tenant.key, kind, datetime.now(UTC), taken)
        report.recovery_schema = name
        async with op.step("recover", f"restoring the full backup into {name}") as step:
            full = Link(links[0].record, links[0].manifest, name)
            timing = await build_full(self._binaries, self.chain_restorer(), self._spec, full)
            async with self._db.acquire() as conn:
                await mark(conn, name, {"goconsole": kind, "tenant_id": str(tenant.id)})
            report.links.append(timing)
            step.details.update(schema=name, link=timing.as_json())
        report.durations_ms["recover"] = _ms(started)
        return name

    async def apply(self, op: Operation, links: list[Link], report: RestoreReport) -> None:
        """Step ``apply``: the incrementals of ``links`` (already pointed at the new schema)."""
        await self._step_gate("apply")
        started = time.perf_counter()
        restorer = self.chain_restorer()
        async with op.step("apply", f"applying {len(links) - 1} incremental(s)") as step:
            conn = await asyncpg.connect(**self._spec.asyncpg_kwargs())
            try:
                for link in links[1:]:
                    report.links.append(await restorer.apply_incremental(conn, link))
            finally:
                await conn.close()
            step.details["links"] = [t.as_json() for t in report.links[1:]]
        report.durations_ms["apply"] = _ms(started)

    async def validate(self, op: Operation, last: Link, report: RestoreReport) -> None:
        """Step ``validate`` of the schema ``last`` was applied to."""
        await self._step_gate("validate")
        started = time.perf_counter()
        async with op.step("validate", f"validating {last.schema}") as step:
            async with self._db.acquire() as conn:
                found = await validate(
                    conn, self._alembic, last, self._app_role, head_revision("tenant")
                )
            step.details.update(found.as_json())
        report.validation = found
        report.durations_ms["validate"] = _ms(started)

    async def _switch_step(
        self,
        op: Operation,
        tenant: Tenant,
        back_to: TenantStatus,
        incoming: str,
        keep_days: float,
        timeout: float,
        force: bool,
        report: RestoreReport,
        details: dict[str, object],
    ) -> None:
        await self._step_gate("switch")
        started = time.perf_counter()
        now = datetime.now(UTC)
        async with self._db.acquire() as conn:
            prefix = schema_prefix(tenant.key, REPLACED)
            replaced = side_schema(tenant.key, REPLACED, now, await taken_names(conn, prefix))
        note = replaced_note(tenant, now, keep_days, details)
        async with op.step("switch", f"switching {incoming} in") as step:
            switched = await self.switcher.switch(
                op,
                tenant,
                incoming,
                replaced,
                note,
                grant=grants_usage(back_to),
                timeout=timeout,
                force=force,
            )
            step.details.update(
                incoming=incoming,
                replaced=switched.replaced,
                pool_paused=switched.pool_paused,
                window_ms=switched.window_ms,
            )
        report.replaced_schema = switched.replaced
        report.restored_schema = incoming
        report.keep_until = note["keep_until"] if switched.replaced else None
        report.switch_window_ms = switched.window_ms
        report.durations_ms["switch"] = _ms(started)

    async def _finish(
        self,
        op: Operation,
        tenant: Tenant,
        back_to: TenantStatus,
        report: RestoreReport,
        switched: bool,
    ) -> None:
        await self._step_gate("finish")
        final = TenantStatus.INACTIVE if back_to is TenantStatus.ARCHIVED and switched else back_to
        async with op.step("finish", f"tenant back to {final}") as step:
            await end_restoring(self._db, tenant, final)
            step.details.update(status=final.value, replaced=report.replaced_schema)
        report.status_after = final.value
        if report.plan is not None:
            report.notes.extend(report.plan.notes)

    async def _clean(self, op: Operation, tenant: Tenant) -> list[str]:
        """Drop the tenant's recovery schemas; a RESTORING tenant's pool is resumed (a stopped
        switch may have left it paused). Returns the schemas dropped."""
        async with self._db.acquire() as conn:
            found = [name for name, _ in await side_schemas(conn, tenant, RECOVERY)]
            for name in found:
                await drop_schema(conn, name)
        if tenant.status is TenantStatus.RESTORING and self._pools is not None:
            await self._pools.resume_after_switch(op, tenant)
        return found

    # -- discard, rollback -------------------------------------------------------------------

    async def discard_recovery(self, key: str, sink: EventSink = discard) -> list[str]:
        """Drop the tenant's recovery schemas and put a RESTORING tenant back; returns the
        schemas dropped."""
        async with self._runner.run("restore", key, sink) as op:
            tenant = await op.tenant(Action.RESTORE)
            async with op.step("discard", "dropping recovery schemas") as step:
                async with self._db.acquire() as conn:
                    before = await status_before(conn, tenant)
                dropped = await self._clean(op, tenant)
                if tenant.status is TenantStatus.RESTORING:
                    await end_restoring(self._db, tenant, before)
                step.details.update(dropped=dropped, status=before.value)
        return dropped

    async def rollback(
        self,
        key: str,
        *,
        keep_days: float,
        timeout: float,
        force: bool,
        sink: EventSink = discard,
    ) -> RestoreReport:
        """Switch the tenant's newest replaced schema back in (the schema switched out is kept
        as replaced in turn)."""
        check_pause_timeout(timeout)
        report = RestoreReport(key, "rollback")
        async with self._runner.run("rollback", key, sink) as op:
            tenant = await op.tenant(Action.RESTORE)
            await self._step_gate("plan")
            async with op.step("plan", "finding the replaced schema") as step:
                async with self._db.acquire() as conn:
                    back_to = await status_before(conn, tenant)
                    candidates = await list_replaced(conn, key)
                if not candidates:
                    raise NotFound(
                        f"tenant {key!r} has no replaced schema to roll back to",
                        hint=ListReplaced(),
                    )
                incoming = candidates[-1].schema
                if tenant.status is TenantStatus.RESTORING and self._pools is not None:
                    await self._pools.resume_after_switch(op, tenant)
                step.details.update(incoming=incoming, status_before=back_to.value)
            tenant = await begin_restoring(self._db, tenant, back_to)
            try:
                await self._switch_step(
                    op,
                    tenant,
                    back_to,
                    incoming,
                    keep_days,
                    timeout,
                    force,
                    report,
                    {"rolled_back_from": incoming},
                )
            except Exception:
                await end_restoring(self._db, tenant, back_to)
                raise
            await self._finish(op, tenant, back_to, report, switched=True)
        return report


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
