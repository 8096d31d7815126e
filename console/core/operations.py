"""The one path every mutation takes: validate, refuse in read-only mode, take the per-tenant
advisory lock, audit each step with the actor, and report progress as events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console.core.db import Database
from console.core.errors import (
    ConsoleError,
    InvalidInput,
    OperationFailed,
    ReadOnlyMode,
    TenantBusy,
)
from console.core.events import EventSink, Phase, StepEvent
from console.core.identifiers import validate_tenant_key
from console.core.tenants.registry import AuditLog

# pg_try_advisory_lock(int4, int4): the first key marks goconsole's per-tenant locks; the second
# is hashtext(tenant key), or 0 for cluster-wide operations such as `init`.
TENANT_LOCK_CLASS = 0x6763_0001
CLUSTER_LOCK_OBJECT = "*cluster*"
_APP_NAME_LIMIT = 63


@dataclass
class Step:
    """A step in progress; ``details`` end up in its audit row and its DONE event."""

    name: str
    details: dict[str, Any] = field(default_factory=dict)


class Operation:
    """One running operation: emits events and audit rows for its steps."""

    def __init__(
        self, name: str, key: str | None, db: Database, audit: AuditLog, sink: EventSink
    ) -> None:
        self.name = name
        self.key = key
        self.tenant_id: uuid.UUID | None = None
        self._db = db
        self._audit = audit
        self._sink = sink
        self.current_step: str | None = None

    def emit(self, step: str, phase: Phase, message: str = "", **extra: Any) -> None:
        """Send one event to the sink."""
        self._sink(StepEvent(self.name, self.key, step, phase, message, **extra))

    def info(self, message: str) -> None:
        """A note that is not a step."""
        self.emit(self.current_step or self.name, Phase.INFO, message)

    async def audit(self, action: str, details: dict[str, Any]) -> None:
        """Write one audit row for this operation."""
        async with self._db.acquire() as conn:
            await self._audit.write(conn, self.tenant_id, f"{self.name}.{action}", details)

    @asynccontextmanager
    async def step(self, name: str, message: str) -> AsyncIterator[Step]:
        """Run one step: STARTED event, then DONE + audit row, or FAILED and re-raise."""
        self.current_step = name
        current = Step(name)
        self.emit(name, Phase.STARTED, message)
        started = time.perf_counter()
        try:
            yield current
        except BaseException as exc:
            self.emit(name, Phase.FAILED, describe_error(exc), details=current.details)
            raise
        elapsed = (time.perf_counter() - started) * 1000
        await self.audit(name, {**current.details, "duration_ms": round(elapsed, 1)})
        self.emit(name, Phase.DONE, message, duration_ms=elapsed, details=current.details)


def _holder_line(key: str | None, row: asyncpg.Record | None) -> str:
    """One line naming the holder of ``key``'s lock (``row``: its backend, if still held)."""
    what = f"tenant {key!r}" if key else "the cluster"
    if row is None:
        return f"{what} is busy with another operation (holder just finished; retry)"
    since = row["state_change"].strftime("%Y-%m-%d %H:%M:%S %Z")
    where = f" from {row['client_addr']}" if row["client_addr"] else ""
    return (
        f"{what} is busy: {row['application_name'] or 'another session'} "
        f"(pid {row['pid']}{where}) since {since}; try again when it finishes"
    )


def describe_error(exc: BaseException) -> str:
    """One line for an exception, PostgreSQL errors included."""
    if isinstance(exc, ConsoleError):
        return exc.message
    if isinstance(exc, asyncpg.PostgresError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = getattr(exc, "detail", None)
        return f"{text}{': ' + detail if detail else ''} (SQLSTATE {exc.sqlstate})"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class OperationRunner:
    """Guards mutations. Front ends never mutate except through :meth:`run`."""

    def __init__(self, db: Database, audit: AuditLog, read_only: bool) -> None:
        self._db = db
        self._audit = audit
        self.read_only = read_only

    @property
    def audit_log(self) -> AuditLog:
        """The audit log operations write to, with the actor."""
        return self._audit

    def application_name(self, operation: str) -> str:
        """The ``application_name`` a lock holder shows while running ``operation`` (what
        :meth:`holder_description` reports to others), within PostgreSQL's 63 bytes."""
        actor = self._audit.actor
        label = f"goconsole {operation} {actor.user}@{actor.host}"
        return label.encode()[:_APP_NAME_LIMIT].decode(errors="ignore")

    @asynccontextmanager
    async def run(self, name: str, key: str | None, sink: EventSink) -> AsyncIterator[Operation]:
        """Validate, lock, and yield an Operation; failures are audited and raised as
        ConsoleErrors naming the step."""
        if self.read_only:
            raise ReadOnlyMode(f"{name} refused: the console is in read-only mode")
        if key is not None:
            validate_tenant_key(key)
        op = Operation(name, key, self._db, self._audit, sink)
        async with self._db.acquire() as lock_conn:
            await self._lock(lock_conn, op)
            try:
                yield op
            except BaseException as exc:
                await self._record_failure(op, exc)
                if isinstance(exc, ConsoleError) or not isinstance(exc, Exception):
                    raise
                where = f" at step {op.current_step!r}" if op.current_step else ""
                raise OperationFailed(
                    f"{name} {key or 'cluster'} failed{where}: {describe_error(exc)}"
                ) from exc
            finally:
                await lock_conn.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2)), "
                    "set_config('application_name', 'goconsole', false)",
                    TENANT_LOCK_CLASS,
                    key or CLUSTER_LOCK_OBJECT,
                )

    async def _lock(self, conn: asyncpg.Connection, op: Operation) -> None:
        got = await conn.fetchval(
            "SELECT set_config('application_name', $3, false) IS NOT NULL "
            "AND pg_try_advisory_lock($1, hashtext($2))",
            TENANT_LOCK_CLASS,
            op.key or CLUSTER_LOCK_OBJECT,
            self.application_name(op.name),
        )
        if not got:
            raise TenantBusy(await self.holder_description(conn, op.key))

    async def holder_description(self, conn: asyncpg.Connection, key: str | None) -> str:
        """Who holds the lock on ``key`` and since when, as one line."""
        return (await self.holder_descriptions(conn, [key]))[key]

    async def holder_descriptions(
        self, conn: asyncpg.Connection, keys: Sequence[str | None]
    ) -> dict[str | None, str]:
        """:meth:`holder_description` of each of ``keys`` (None: the cluster), in one query."""
        rows = await conn.fetch(
            "SELECT o.object, a.pid, a.application_name, a.state_change, a.client_addr "
            "FROM unnest($2::text[]) AS o(object) "
            "JOIN pg_locks l ON l.objid = hashtext(o.object)::oid "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid = $1::int4::oid",
            TENANT_LOCK_CLASS,
            [key or CLUSTER_LOCK_OBJECT for key in keys],
        )
        holders = {r["object"]: r for r in rows}
        return {key: _holder_line(key, holders.get(key or CLUSTER_LOCK_OBJECT)) for key in keys}

    async def busy(self, conn: asyncpg.Connection) -> dict[str, str]:
        """Every tenant whose lock is held now: key -> holder and since when."""
        rows = await conn.fetch(
            "SELECT t.key, a.pid, a.application_name, a.state_change "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "JOIN public.tenants t ON hashtext(t.key)::oid = l.objid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid = $1::int4::oid",
            TENANT_LOCK_CLASS,
        )
        return {
            r["key"]: f"{r['application_name'] or 'another session'} (backend pid {r['pid']}) "
            f"since {r['state_change'].strftime('%H:%M:%S %Z')}"
            for r in rows
        }

    async def _record_failure(self, op: Operation, exc: BaseException) -> None:
        if isinstance(exc, InvalidInput) or not isinstance(exc, Exception):
            return  # refused before anything was attempted, or interrupted: nothing to record
        details = {"step": op.current_step, "error": describe_error(exc)}
        try:
            await op.audit("failed", details)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            op.info("could not write the failure to the audit log (database unreachable)")
