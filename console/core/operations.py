"""The one path every mutation takes: validate, refuse in read-only mode, take the per-tenant
advisory lock, audit each step with the actor, and report progress as events. Fleet operations
(bulk provisioning, migrations) batch many tenants per statement but share its pieces: the
read-only guard, the concurrency range, the locks (:mod:`console.core.locks`) and the audit
columns (:mod:`console.core.audit`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console.core import locks, states
from console.core.audit import AuditLog
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
from console.core.tenants.registry import Registry, Tenant

_APP_NAME_LIMIT = 63


def max_workers(pool_size: int, held: int) -> int:
    """The most workers (one connection each) a pool of ``pool_size`` connections serves
    besides the ``held`` ones a fleet operation keeps for itself (locks, records): a
    concurrency is valid from 1 to this."""
    return pool_size - held


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

    async def tenant(self, action: states.Action) -> Tenant:
        """The operation's tenant, which ``action`` must be allowed on (InvalidState
        otherwise); its id goes in the audit rows from now on."""
        assert self.key is not None
        async with self._db.acquire() as conn:
            tenant = await Registry().require(conn, self.key)
        self.tenant_id = tenant.id
        states.check(action, tenant)
        return tenant

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
            hint = exc.hint if isinstance(exc, ConsoleError) else None
            self.emit(name, Phase.FAILED, describe_error(exc), details=current.details, hint=hint)
            raise
        elapsed = (time.perf_counter() - started) * 1000
        await self.audit(name, {**current.details, "duration_ms": round(elapsed, 1)})
        self.emit(name, Phase.DONE, message, duration_ms=elapsed, details=current.details)


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

    def refuse_if_read_only(self, operation: str, why: str = "") -> None:
        """ReadOnlyMode (``why`` appended to its message) when the console is read-only."""
        if self.read_only:
            raise ReadOnlyMode.refusing(operation, why)

    def application_name(self, operation: str) -> str:
        """The ``application_name`` a lock holder shows while running ``operation`` (what
        :func:`~console.core.locks.holder_descriptions` reports to others), within 63 bytes."""
        actor = self._audit.actor
        label = f"goconsole {operation} {actor.user}@{actor.host}"
        return label.encode()[:_APP_NAME_LIMIT].decode(errors="ignore")

    @asynccontextmanager
    async def run(self, name: str, key: str | None, sink: EventSink) -> AsyncIterator[Operation]:
        """Validate, lock, and yield an Operation; failures are audited and raised as
        ConsoleErrors naming the step."""
        self.refuse_if_read_only(name)
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
                    f"SELECT {locks.advisory_sql('pg_advisory_unlock', '$1')}, "
                    "set_config('application_name', 'goconsole', false)",
                    locks.lock_object(key),
                )

    async def _lock(self, conn: asyncpg.Connection, op: Operation) -> None:
        got = await conn.fetchval(
            "SELECT set_config('application_name', $2, false) IS NOT NULL "
            f"AND {locks.advisory_sql('pg_try_advisory_lock', '$1')}",
            locks.lock_object(op.key),
            self.application_name(op.name),
        )
        if not got:
            raise TenantBusy((await locks.holder_descriptions(conn, [op.key]))[op.key])

    async def _record_failure(self, op: Operation, exc: BaseException) -> None:
        if isinstance(exc, InvalidInput) or not isinstance(exc, Exception):
            return  # refused before anything was attempted, or interrupted: nothing to record
        details = {"step": op.current_step, "error": describe_error(exc)}
        try:
            await op.audit("failed", details)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            op.info("could not write the failure to the audit log (database unreachable)")
