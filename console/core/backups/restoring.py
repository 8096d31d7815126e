"""A restore's bookkeeping: the RESTORING status and the one to return to, and the chain's
links read and checked before anything is created."""

from __future__ import annotations

import asyncpg

from console.config import BackupSettings
from console.core.backups import catalog
from console.core.backups.check import check_stored, record_check
from console.core.backups.recovery import RestorePlan
from console.core.backups.restore import Link
from console.core.binaries import PgBinaries
from console.core.db import Database
from console.core.errors import NotFound
from console.core.states import Action, allowed
from console.core.tenants.registry import Tenant, TenantStatus


async def status_before(conn: asyncpg.Connection, tenant: Tenant) -> TenantStatus:
    """The status a restore of ``tenant`` returns it to: its status, or for a RESTORING one the
    status it had when the restore started."""
    if tenant.status is not TenantStatus.RESTORING:
        return tenant.status
    value = await conn.fetchval(
        "SELECT status_before_restore FROM public.tenants WHERE id = $1", tenant.id
    )
    status = TenantStatus(value) if value else TenantStatus.INACTIVE
    return status if allowed(Action.RESTORE, status) else TenantStatus.INACTIVE


async def begin_restoring(db: Database, tenant: Tenant, before: TenantStatus) -> Tenant:
    """Mark ``tenant`` RESTORING, remembering ``before``."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "UPDATE public.tenants SET status = 'RESTORING', status_before_restore = $2 "
            "WHERE id = $1 RETURNING *",
            tenant.id,
            before.value,
        )
    assert row is not None
    return Tenant.from_row(row)


async def end_restoring(db: Database, tenant: Tenant, to: TenantStatus) -> None:
    """Put ``tenant`` in ``to``; no restore under way any more."""
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE public.tenants SET status = $2, status_before_restore = NULL WHERE id = $1",
            tenant.id,
            to.value,
        )


async def check_unverified(
    db: Database, plan: RestorePlan, settings: BackupSettings, binaries: PgBinaries
) -> None:
    """The checksum-level check of each link never verified, recorded; raises at the first
    that fails (nothing is created before)."""
    for record in plan.links:
        if record.id not in plan.unchecked:
            continue
        async with db.acquire() as conn:
            manifest = await catalog.manifest_of(conn, record.id)
        if manifest is None:
            raise NotFound(f"backup {record.id} has no manifest (running, failed, old format)")
        try:
            await check_stored(record, manifest, settings, binaries)
        except Exception as exc:
            async with db.acquire() as conn:
                await record_check(conn, record.id, "checksum", str(exc))
            raise
        async with db.acquire() as conn:
            await record_check(conn, record.id, "checksum", "ok")


async def chain_links(db: Database, plan: RestorePlan) -> list[Link]:
    """The plan's backups with their manifests."""
    links = []
    async with db.acquire() as conn:
        for record in plan.links:
            manifest = await catalog.manifest_of(conn, record.id)
            if manifest is None:
                raise NotFound(f"backup {record.id} has no manifest (an older format)")
            links.append(Link(record, manifest))
    return links
