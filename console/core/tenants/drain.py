"""Draining a tenant before it is deactivated or offboarded: wait until no other backend holds
locks on its tables, or terminate them when forced."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from console.core.db import Database
from console.core.errors import OperationFailed
from console.core.hints import Force
from console.core.operations import Operation
from console.core.tenants.registry import Tenant

_DRAIN_POLL_S = 0.1


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


async def lock_blockers(conn: asyncpg.Connection, schema: str) -> list[Blocker]:
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


async def drain(
    op: Operation, db: Database, tenant: Tenant, timeout: float, force: bool, deadline: float
) -> None:
    """Wait until no other backend holds locks on the tenant's tables, until ``deadline``
    (the end of the ``timeout`` the operator gave, shared with the pool pause)."""
    async with op.step("drain", f"waiting up to {timeout:g}s for lock holders") as step:
        async with db.acquire() as conn:
            blockers = await lock_blockers(conn, tenant.schema_name)
            while blockers and time.monotonic() < deadline:
                await asyncio.sleep(_DRAIN_POLL_S)
                blockers = await lock_blockers(conn, tenant.schema_name)
            if blockers and force:
                for blocker in blockers:
                    op.info(f"terminating {blocker.describe()}")
                    await conn.execute("SELECT pg_terminate_backend($1)", blocker.pid)
                step.details["terminated"] = [b.pid for b in blockers]
                grace = time.monotonic() + 5.0
                while blockers and time.monotonic() < grace:
                    await asyncio.sleep(_DRAIN_POLL_S)
                    blockers = await lock_blockers(conn, tenant.schema_name)
            if blockers:
                listing = "; ".join(b.describe() for b in blockers)
                raise OperationFailed(
                    f"{len(blockers)} backend(s) still hold locks on {tenant.schema_name} "
                    f"after {timeout:g}s: {listing}",
                    hint=None if force else Force(),
                )
