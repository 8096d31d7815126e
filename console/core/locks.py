"""Who holds locks on a tenant's tables: named when a migration fails on its lock timeout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# PostgreSQL's lock_not_available: what a statement raises when lock_timeout expires.
LOCK_TIMEOUT_SQLSTATE = "55P03"
HOLDERS_NAMED = 5


@dataclass(frozen=True)
class LockHolder:
    """Another backend holding granted locks on relations of a schema."""

    pid: int
    user: str
    application: str
    client: str
    state: str
    query_start: datetime | None
    locks: tuple[str, ...]  # "AccessExclusiveLock on orders"

    def describe(self) -> str:
        """One line: backend pid, user, application, client, state, query start, locks."""
        started = self.query_start.strftime("%H:%M:%S %Z") if self.query_start else "?"
        return (
            f"backend pid {self.pid} (user {self.user or '?'}, application "
            f"{self.application or '(none)'}, {self.client}, {self.state or 'no state'}, "
            f"query started {started}, holds {', '.join(self.locks)})"
        )


async def schema_lock_holders(conn: asyncpg.Connection, schema: str) -> list[LockHolder]:
    """Other backends holding granted locks on relations of ``schema``, by pid."""
    rows = await conn.fetch(
        """
        SELECT a.pid, coalesce(a.usename::text, '') AS usename,
               coalesce(a.application_name, '') AS app,
               coalesce(host(a.client_addr), 'local socket') AS client,
               coalesce(a.state, '') AS state, a.query_start,
               array_agg(DISTINCT l.mode || ' on ' || quote_ident(c.relname::text)) AS locks
        FROM pg_locks l
        JOIN pg_class c ON c.oid = l.relation
        JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
          AND l.pid <> pg_backend_pid()
        GROUP BY a.pid, a.usename, a.application_name, a.client_addr, a.state, a.query_start
        ORDER BY a.pid
        """,
        schema,
    )
    return [
        LockHolder(
            r["pid"],
            r["usename"],
            r["app"],
            r["client"],
            r["state"],
            r["query_start"],
            tuple(sorted(r["locks"])),
        )
        for r in rows
    ]


def blocked_by(holders: list[LockHolder]) -> str:
    """The text a lock-timeout failure adds: who held the tenant's tables."""
    if not holders:
        return "no other session held locks on its tables any more when looked up"
    named = "; ".join(h.describe() for h in holders[:HOLDERS_NAMED])
    more = len(holders) - HOLDERS_NAMED
    return f"blocked by {named}" + (f"; and {more} more" if more > 0 else "")
