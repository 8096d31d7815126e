"""PgBouncer's admin console over psycopg 3.

The admin console speaks only the simple query protocol: asyncpg cannot read it, and psycopg
needs ``autocommit=True`` and ``prepare_threshold=None`` (else the 6th identical ``SHOW`` fails).
No parameters, no ``BEGIN``: names are checked by :func:`pgbouncer_name` and numbers are ints.

Timeouts close the connection first and then collect the pending query, because cancelling a
psycopg query makes it wait for a server-side cancel the admin console never sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from console.core.errors import (
    NotFound,
    OperationFailed,
    PgBouncerUnavailable,
)
from console.core.identifiers import pgbouncer_name
from console.core.pools.admin_spec import AdminSpec
from console.core.pools.rows import Row

T = TypeVar("T")
SHOW_KINDS = frozenset({"POOLS", "STATS", "DATABASES", "CLIENTS", "SERVERS", "CONFIG", "VERSION"})
DB_COMMANDS = frozenset({"PAUSE", "RESUME", "DISABLE", "ENABLE", "KILL", "RECONNECT"})


class AdminConnection:
    """One admin-console connection, reused across calls and re-opened after a failure."""

    def __init__(self, spec: AdminSpec) -> None:
        self.spec = spec
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self.queries = 0

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}
        if self.spec.password is not None:
            kwargs["password"] = self.spec.password
        try:
            return await _bounded(
                psycopg.AsyncConnection.connect(self.spec.conninfo, **kwargs),
                self.spec.command_timeout,
                None,
            )
        except (OSError, psycopg.Error, TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> PgBouncerUnavailable:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        cause = lines[0] if lines else type(exc).__name__  # the cause, not libpq's hint
        if isinstance(exc, TimeoutError):
            cause = f"no answer within {self.spec.command_timeout:g}s"
        return PgBouncerUnavailable(f"PgBouncer at {self.spec.describe()} unreachable: {cause}")

    async def show(self, kind: str) -> list[Row]:
        """Rows of ``SHOW <kind>`` as dicts keyed by column name."""
        if kind not in SHOW_KINDS:
            raise ValueError(f"unsupported SHOW {kind}")
        return await self._execute(f"SHOW {kind}", rows=True)

    async def command(self, text: str) -> None:
        """Run one admin command (RELOAD, SET ..., RESUME db, ...)."""
        await self._execute(text, rows=False)

    async def database_command(self, verb: str, name: str) -> None:
        """``PAUSE``/``RESUME``/``DISABLE``/``ENABLE``/``KILL``/``RECONNECT`` one database."""
        if verb not in DB_COMMANDS:
            raise ValueError(f"unsupported command {verb}")
        await self.command(f"{verb} {pgbouncer_name(name)}")

    async def _execute(self, sql: str, *, rows: bool) -> list[Row]:
        async with self._lock:
            reused = self._conn is not None and not self._conn.closed
            try:
                return await self._attempt(sql, rows)
            except _StaleConnection as stale:
                if not reused:
                    raise self._unavailable(stale.cause) from stale.cause
            # The kept connection died since its last use (PgBouncer restarted, a network
            # blip): admin commands are idempotent, so one more try on a new connection.
            try:
                return await self._attempt(sql, rows)
            except _StaleConnection as stale:
                raise self._unavailable(stale.cause) from stale.cause

    async def _attempt(self, sql: str, rows: bool) -> list[Row]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._open()
        conn = self._conn
        self.queries += 1
        try:
            return await _bounded(_run(conn, sql, rows), self.spec.command_timeout, conn)
        except psycopg.errors.ProtocolViolation as exc:
            # the admin console reports command errors (e.g. "no such database") this way
            # and keeps the connection
            if not conn.closed:
                raise _command_error(sql, exc) from exc
            await self._drop()
            raise _StaleConnection(exc) from exc
        except TimeoutError as exc:
            await self._drop()
            raise self._unavailable(exc) from exc  # no answer: do not wait a second time
        except (OSError, psycopg.Error) as exc:
            await self._drop()
            raise _StaleConnection(exc) from exc

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def close(self) -> None:
        """Close the connection (idempotent; the next call re-opens it)."""
        async with self._lock:
            await self._drop()

    async def pause(self, name: str, timeout: float) -> bool:
        """``PAUSE name`` on a connection of its own; True once every in-flight transaction
        finished, False after ``timeout`` seconds, with the pause undone (``RESUME``)."""
        checked = pgbouncer_name(name)
        conn = await self._open()
        task = asyncio.ensure_future(conn.execute(f"PAUSE {checked}"))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if done:
                try:
                    task.result()
                except psycopg.errors.ProtocolViolation as exc:
                    raise _command_error(f"PAUSE {checked}", exc) from exc
                except (OSError, psycopg.Error) as exc:
                    raise self._unavailable(exc) from exc
                return True
            await self.database_command("RESUME", checked)
            return False
        finally:
            await conn.close()
            if not task.done():
                await asyncio.gather(task, return_exceptions=True)


class _StaleConnection(Exception):
    """The connection failed under a command; ``cause`` says how."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _run(conn: psycopg.AsyncConnection[Any], sql: str, rows: bool) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode())
        return list(await cur.fetchall()) if rows and cur.description else []


async def _bounded(
    work: Awaitable[T], timeout: float, conn: psycopg.AsyncConnection[Any] | None
) -> T:
    """Await ``work`` for at most ``timeout`` s; on timeout close ``conn`` (instead of
    cancelling the query) and raise TimeoutError. Cancelled itself (a console quitting
    mid-probe), it stops ``work`` the same way before passing the cancellation on."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        await _abandon(task, conn)
        raise
    if done:
        return task.result()
    await _abandon(task, conn)
    raise TimeoutError


async def _abandon(task: asyncio.Future[Any], conn: psycopg.AsyncConnection[Any] | None) -> None:
    """Stop ``task``: close ``conn`` rather than cancel a query on it; a connection the task
    opened anyway (it finished as it was given up) is closed, never left to the collector."""
    if conn is not None and not conn.closed:
        await conn.close()
    else:
        task.cancel()
    outcome: object = (await asyncio.gather(task, return_exceptions=True))[0]
    if isinstance(outcome, psycopg.AsyncConnection) and not outcome.closed:
        await outcome.close()


def _command_error(sql: str, exc: BaseException) -> Exception:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text.startswith("no such database"):
        return NotFound(f"PgBouncer has no database {text.split(':', 1)[-1].strip()}")
    return OperationFailed(f"PgBouncer refused {sql.split()[0]}: {text}")


def admin_console_answers(dsn: str) -> bool:
    """Whether PgBouncer's admin console at ``dsn`` accepts a connection now (blocking)."""
    try:
        psycopg.connect(dsn, autocommit=True, prepare_threshold=None, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True
