"""The switch of a restore or rollback: one schema in, the live one out, atomically.

Under the tenant's lock (the caller's operation), the tenant's PgBouncer pool is paused (new
queries wait, in-flight transactions finish; the lifecycle's timeout, and ``force`` killing
what is left at the timeout), then one transaction with ``lifecycle.lock_timeout`` renames the
live schema to the replaced name (the application role loses its usage; a JSON comment says
whose it is and until when it is kept), renames the incoming schema to the live name and grants
the application role (an INACTIVE tenant keeps its usage revoked), then the pool is resumed
(after a RECONNECT, so no server connection from before the switch is reused). Any failure
rolls the transaction back: exactly the original schema is live and the pool is resumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from console.core.backups.rebuild import mark
from console.core.db import Database
from console.core.identifiers import quote_ident
from console.core.operations import Operation
from console.core.pools.service import PoolService
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.schema import grant_access, revoke_usage, schema_revision

REPLACED_NOTE = "replaced"


@dataclass(frozen=True)
class Switched:
    """What a switch did: the schema now out (None: there was no live schema) and how long the
    pool was paused (None: no pool was paused)."""

    replaced: str | None
    window_ms: float | None
    pool_paused: bool


def replaced_note(
    tenant: Tenant, at: datetime, keep_days: float, details: dict[str, Any]
) -> dict[str, Any]:
    """The JSON comment of a replaced schema."""
    return {
        "goconsole": REPLACED_NOTE,
        "tenant_id": str(tenant.id),
        "key": tenant.key,
        "replaced_at": at.isoformat(),
        "keep_until": (at + timedelta(days=keep_days)).isoformat(),
        **details,
    }


class Switcher:
    """Swaps a tenant's live schema for another one."""

    def __init__(
        self, db: Database, app_role: str, lock_timeout_s: float, pools: PoolService | None
    ) -> None:
        self._db = db
        self._app_role = app_role
        self._lock_timeout_ms = str(int(lock_timeout_s * 1000))
        self._pools = pools

    async def switch(
        self,
        op: Operation,
        tenant: Tenant,
        incoming: str,
        replaced_name: str,
        note: dict[str, Any],
        *,
        grant: bool,
        timeout: float,
        force: bool,
    ) -> Switched:
        """Make ``incoming`` the tenant's live schema; the live one (if any) becomes
        ``replaced_name`` with comment ``note``. ``grant``: give the application role usage
        (an ACTIVE tenant), else table rights only."""
        live = tenant.schema_name
        async with self._db.acquire() as conn:
            present, _ = await schema_revision(conn, live)
        paused = False
        if self._pools is not None and present:
            paused = await self._pools.pause_for_switch(op, tenant, timeout, force)
        started = time.perf_counter()
        try:
            async with self._db.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT set_config('lock_timeout', $1, true)", self._lock_timeout_ms
                )
                if present:
                    await conn.execute(
                        f"ALTER SCHEMA {quote_ident(live)} RENAME TO {quote_ident(replaced_name)}"
                    )
                    await revoke_usage(conn, replaced_name, self._app_role)
                    await mark(conn, replaced_name, note)
                await conn.execute(
                    f"ALTER SCHEMA {quote_ident(incoming)} RENAME TO {quote_ident(live)}"
                )
                await mark(conn, live, None)
                await grant_access(conn, live, self._app_role)
                if not grant:
                    await revoke_usage(conn, live, self._app_role)
        finally:
            if paused:
                assert self._pools is not None
                await self._pools.resume_after_switch(op, tenant)
        window = (time.perf_counter() - started) * 1000 if paused else None
        return Switched(replaced_name if present else None, window, paused)


def grants_usage(status: TenantStatus) -> bool:
    """Whether a tenant returning to ``status`` gets the application role's usage back."""
    return status is TenantStatus.ACTIVE
