"""Outcome records of tenants whose migration committed, written in batches after the commit.

A tenant's migration transaction holds only its lock, its revision check and the DDL; its row
in ``migration_run_tenants`` and its ``migrate.apply`` audit row are written a moment later, many
tenants per statement. The version row inside the tenant's schema stays the truth: should the
process die between a commit and the next flush, the next run finds that tenant still
``pending`` in a dead run, at the run's target, and records it then (:func:`reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from console.core.audit import AUDIT_INSERT, AuditLog, audit_row

FLUSH_INTERVAL_S = 0.25
FLUSH_BATCH = 500

_DETAILS = """jsonb_strip_nulls(jsonb_build_object(
           'run', $1::text, 'from', from_rev, 'to', to_rev, 'method', $8::text,
           'duration_ms', round(duration_ms::numeric, 1), 'recovered', $9::boolean))"""
_RECORD_LANDED = f"""
WITH done AS (
    UPDATE public.migration_run_tenants r
    SET status = 'succeeded', error = NULL, duration_ms = x.duration
    FROM unnest($2::uuid[], $3::float8[], $4::timestamptz[]) AS x(tenant, duration, landed)
    WHERE r.run_id = $1 AND r.tenant_id = x.tenant
    RETURNING r.tenant_id, r.from_rev, r.to_rev, r.duration_ms, x.landed
)
{AUDIT_INSERT}
SELECT {audit_row("tenant_id", "'migrate.apply'", ("$5", "$6", "$7"), _DETAILS, at="landed")}
FROM done
"""


@dataclass(frozen=True)
class Landed:
    """A tenant whose migration committed."""

    tenant_id: uuid.UUID
    duration_ms: float | None
    landed_at: datetime


async def record_landed(
    conn: asyncpg.Connection,
    audit: AuditLog,
    run_id: uuid.UUID,
    landed: list[Landed],
    method: str = "sql",
    recovered: bool = False,
) -> None:
    """Mark ``landed`` tenants succeeded in ``run_id`` and audit each, in one statement."""
    if not landed:
        return
    await conn.execute(
        _RECORD_LANDED,
        run_id,
        [x.tenant_id for x in landed],
        [x.duration_ms for x in landed],
        [x.landed_at for x in landed],
        *audit.actor_values,
        method,
        True if recovered else None,
    )


class LandedRecorder:
    """Buffers landed tenants and writes them every :data:`FLUSH_INTERVAL_S` (or every
    :data:`FLUSH_BATCH` tenants) on one connection; use as an async context manager, which
    flushes what is left on the way out. A write is never cancelled half-way."""

    def __init__(self, conn: asyncpg.Connection, audit: AuditLog, run_id: uuid.UUID) -> None:
        self._conn = conn
        self._audit = audit
        self._run_id = run_id
        self._pending: list[Landed] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def add(self, tenant_id: uuid.UUID, duration_ms: float) -> None:
        """Note that ``tenant_id`` committed just now."""
        self._pending.append(Landed(tenant_id, round(duration_ms, 3), datetime.now(UTC)))
        if len(self._pending) >= FLUSH_BATCH:
            self._wake.set()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            await record_landed(self._conn, self._audit, self._run_id, batch)
        except BaseException:
            self._pending[:0] = batch  # kept for the next flush, or found by reconcile
            raise

    async def _flush_periodically(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._flush()  # on failure the batch stays buffered for the next try

    async def __aenter__(self) -> LandedRecorder:
        self._task = asyncio.create_task(self._flush_periodically(), name="migrate-records")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._task is not None
        self._stopping = True
        self._wake.set()
        await asyncio.shield(self._task)
        if exc is None:
            await self._flush()  # a failure here fails the run; reconcile records the rest
            return
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._flush()


async def reconcile(
    conn: asyncpg.Connection, audit: AuditLog, revisions: dict[uuid.UUID, str | None]
) -> int:
    """Record tenants that a dead run (still ``running``) migrated but never recorded: those
    ``pending`` whose schema is at the run's target. Returns how many were recorded."""
    rows = await conn.fetch(
        "SELECT r.run_id, r.tenant_id, r.to_rev FROM public.migration_run_tenants r "
        "JOIN public.migration_runs m ON m.id = r.run_id "
        "WHERE m.status = 'running' AND r.status = 'pending'"
    )
    by_run: dict[uuid.UUID, list[Landed]] = {}
    now = datetime.now(UTC)
    for row in rows:
        if revisions.get(row["tenant_id"]) == row["to_rev"]:
            by_run.setdefault(row["run_id"], []).append(Landed(row["tenant_id"], None, now))
    for run_id, landed in by_run.items():
        await record_landed(conn, audit, run_id, landed, recovered=True)
    return sum(len(v) for v in by_run.values())
