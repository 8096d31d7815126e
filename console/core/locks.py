"""Locks: the per-tenant advisory locks every mutation takes (try/release, one or many keys,
who holds them, and the SQL fragment batched statements embed), and who holds locks on a
tenant's tables (named when a migration fails on its lock timeout)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Advisory locks take (int4, int4): the first key marks goconsole's per-tenant locks; the second
# is hashtext(tenant key), or of a name such as CLUSTER_LOCK_OBJECT for wider operations.
TENANT_LOCK_CLASS = 0x6763_0001
CLUSTER_LOCK_OBJECT = "*cluster*"


def lock_object(key: str | None) -> str:
    """The name locked for ``key`` (None: the cluster)."""
    return key or CLUSTER_LOCK_OBJECT


def advisory_sql(function: str, name: str) -> str:
    """SQL calling advisory-lock ``function`` (e.g. ``pg_try_advisory_xact_lock``) on the lock
    of ``name`` (a SQL expression: a bind parameter, a column or a literal)."""
    return f"{function}({TENANT_LOCK_CLASS}, hashtext({name}))"


def held_lock_sql(name: str) -> str:
    """SQL condition: the ``pg_locks`` row ``l`` is a granted lock of ``name`` (an expression)."""
    return (
        f"l.objid = hashtext({name})::oid AND l.locktype = 'advisory' AND l.granted "
        f"AND l.objsubid = 2 AND l.classid = {TENANT_LOCK_CLASS}::int4::oid"
    )


async def try_lock(conn: asyncpg.Connection, name: str) -> bool:
    """Take the session lock of ``name`` if it is free."""
    return bool(await conn.fetchval(f"SELECT {advisory_sql('pg_try_advisory_lock', '$1')}", name))


async def unlock(conn: asyncpg.Connection, name: str) -> None:
    """Release the session lock of ``name``."""
    await conn.execute(f"SELECT {advisory_sql('pg_advisory_unlock', '$1')}", name)


async def try_lock_many(conn: asyncpg.Connection, names: Sequence[str]) -> set[str]:
    """Take the session locks of ``names`` that are free, in one statement; returns those."""
    rows = await conn.fetch(
        f"SELECT name, {advisory_sql('pg_try_advisory_lock', 'name')} AS locked "
        "FROM unnest($1::text[]) AS name",
        names,
    )
    return {r["name"] for r in rows if r["locked"]}


async def unlock_many(conn: asyncpg.Connection, names: Iterable[str]) -> None:
    """Release the session locks of ``names`` in one statement. On a connection that is lost,
    or busy with an interrupted statement, the locks go with the session: the pool closes a
    connection it cannot reset."""
    names = sorted(names)
    if not names or conn.is_closed():
        return
    with contextlib.suppress(asyncpg.InterfaceError):
        await conn.execute(
            f"SELECT {advisory_sql('pg_advisory_unlock', 'name')} FROM unnest($1::text[]) AS name",
            names,
        )


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


async def holder_descriptions(
    conn: asyncpg.Connection, keys: Sequence[str | None]
) -> dict[str | None, str]:
    """Who holds the lock of each of ``keys`` (None: the cluster) and since when, one line
    each, in one query."""
    rows = await conn.fetch(
        "SELECT o.object, a.pid, a.application_name, a.state_change, a.client_addr "
        "FROM unnest($1::text[]) AS o(object) "
        f"JOIN pg_locks l ON {held_lock_sql('o.object')} "
        "JOIN pg_stat_activity a ON a.pid = l.pid",
        [lock_object(key) for key in keys],
    )
    holders = {r["object"]: r for r in rows}
    return {key: _holder_line(key, holders.get(lock_object(key))) for key in keys}


async def busy_tenants(conn: asyncpg.Connection) -> dict[str, str]:
    """Every tenant whose lock is held now: key -> holder and since when."""
    rows = await conn.fetch(
        "SELECT t.key, a.pid, a.application_name, a.state_change "
        "FROM public.tenants t "
        f"JOIN pg_locks l ON {held_lock_sql('t.key')} "
        "JOIN pg_stat_activity a ON a.pid = l.pid"
    )
    return {
        r["key"]: f"{r['application_name'] or 'another session'} (backend pid {r['pid']}) "
        f"since {r['state_change'].strftime('%H:%M:%S %Z')}"
        for r in rows
    }


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
