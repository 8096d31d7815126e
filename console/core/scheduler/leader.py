"""Exactly one leader per cluster: the holder of a session advisory lock runs the jobs.

The lock is held on a dedicated connection straight to PostgreSQL (never a pooled one: asyncpg's
pool runs ``pg_advisory_unlock_all()`` when a connection goes back; never through PgBouncer,
whose transaction pooling keeps no session), with TCP keepalives so the server drops the
session, and the lock, of a leader whose host died. A standby opens a connection only to try
the lock, so the holder's ``backend_start`` is when it became the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from console.core import locks
from console.core.db import SESSION_ERRORS, Database

LEADER_LOCK = "*scheduler*"
# Server-side keepalives on the leader's connection: a dead peer is found in ~25 s.
KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
LABEL_PREFIX = "goconsole scheduler "
_LOST: tuple[type[BaseException], ...] = (*SESSION_ERRORS, TimeoutError)


@dataclass(frozen=True)
class LeaderInfo:
    """Who holds the leader lock: ``who`` (user@host), its backend pid, since when."""

    who: str
    pid: int
    since: datetime

    def describe(self) -> str:
        """``ops@host since 02:11`` (UTC)."""
        return f"{self.who} since {self.since:%H:%M}"


async def current_leader(conn: asyncpg.Connection) -> LeaderInfo | None:
    """The leader of the cluster, or None when no scheduler leads it."""
    row = await conn.fetchrow(
        "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
        f"JOIN pg_stat_activity a ON a.pid = l.pid WHERE {locks.held_lock_sql('$1')}",
        LEADER_LOCK,
    )
    if row is None:
        return None
    name = row["application_name"] or ""
    who = name.removeprefix(LABEL_PREFIX) if name.startswith(LABEL_PREFIX) else name or "?"
    return LeaderInfo(who, row["pid"], row["backend_start"])


class Leadership:
    """This process's claim to lead: try to take the lock, check it is still held, let go."""

    def __init__(self, db: Database, label: str) -> None:
        self._db = db
        self._label = label  # application_name, e.g. "goconsole scheduler ops@host"
        self._conn: asyncpg.Connection | None = None
        self._guard = asyncio.Lock()  # one statement at a time on the connection

    @property
    def held(self) -> bool:
        """Whether this process led at the last try or check."""
        return self._conn is not None

    async def try_acquire(self) -> bool:
        """Lead if nobody does (or keep leading); whether this process leads now."""
        if self._conn is not None:
            return await self.check()
        conn = await self._db.connect({"application_name": self._label, **KEEPALIVES})
        try:
            got = await locks.try_lock(conn, LEADER_LOCK)
        except BaseException:
            conn.terminate()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def check(self) -> bool:
        """Whether the lock is still held on a live connection (asked of the server); a lost
        connection ends the leadership."""
        conn = self._conn
        if conn is None:
            return False
        try:
            async with self._guard:
                held = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid() "
                    f"AND {locks.held_lock_sql('$1')})",
                    LEADER_LOCK,
                    timeout=self._db.spec.connect_timeout,
                )
        except _LOST:
            held = False
        if not held:
            self._drop()
        return bool(held)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def release(self) -> None:
        """Stop leading: closing the connection frees the lock."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*_LOST):
                await conn.close(timeout=self._db.spec.connect_timeout)
            if not conn.is_closed():
                conn.terminate()
