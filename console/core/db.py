"""Connections to one PostgreSQL cluster: DSN resolution, pools, and a description for messages.

The console connects directly to PostgreSQL (not through PgBouncer): lifecycle operations hold
session-level advisory locks, which a transaction-mode pooler would not keep.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg

from console.config import ClusterSettings
from console.core.conninfo import ConninfoError, make_conninfo, parse_conninfo
from console.core.errors import ConfigError, ConnectionFailed
from console.core.hints import CheckConnection
from console.core.identifiers import quote_ident

APPLICATION_NAME = "goconsole"
_ASYNCPG_KEYS = {"host": "host", "port": "port", "user": "user", "dbname": "database"}
# What a plain connection raises when the server is away (CONNECT_ERRORS) or goes away
# mid-session (SESSION_ERRORS); for callers outside the core, which never import the driver.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncpg.PostgresError)
SESSION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


@dataclass(frozen=True)
class ConnectionSpec:
    """Where and as whom to connect. ``password`` is never printed or audited."""

    conninfo: str
    password: str | None = None
    connect_timeout: float = 10.0
    from_defaults: bool = False  # no DSN anywhere: PG* variables and built-in defaults apply

    @classmethod
    def resolve(cls, cluster: ClusterSettings, dsn_override: str | None = None) -> ConnectionSpec:
        """Apply ``--dsn`` / ``$GOCONSOLE_DSN`` over the configured DSN, then env secrets.

        With no DSN at all, libpq's ``PG*`` variables apply, as with psql.
        """
        dsn = dsn_override or os.environ.get("GOCONSOLE_DSN") or cluster.dsn
        try:
            params = parse_conninfo(dsn)
        except ConninfoError as exc:
            raise ConfigError(f"invalid DSN: {exc}") from None
        password = params.pop("password", None)
        user = os.environ.get(cluster.user_env) if cluster.user_env else None
        if user and "user" not in params:
            params["user"] = user
        if cluster.password_env and os.environ.get(cluster.password_env):
            password = os.environ[cluster.password_env]
        unknown = set(params) - {*_ASYNCPG_KEYS, "sslmode", "application_name", "connect_timeout"}
        if unknown:
            raise ConfigError(
                f"unsupported DSN parameter(s) {', '.join(sorted(unknown))}; "
                "allowed: host, port, user, password, dbname, sslmode, application_name, "
                "connect_timeout"
            )
        raw_timeout = params.pop("connect_timeout", None)
        try:
            timeout = cluster.connect_timeout if raw_timeout is None else float(raw_timeout)
        except ValueError:
            raise ConfigError(
                f"DSN connect_timeout must be a number, got {raw_timeout!r}"
            ) from None
        return cls(
            make_conninfo(params),
            password,
            timeout,
            from_defaults=not dsn,
        )

    def params(self) -> dict[str, str]:
        """The conninfo as a dict (no password)."""
        return parse_conninfo(self.conninfo)

    def describe(self) -> str:
        """``user@host:port/dbname`` for messages, with libpq's defaults filled from env."""
        p = self.params()
        host = p.get("host") or os.environ.get("PGHOST") or "(a local socket or localhost)"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        db = p.get("dbname") or os.environ.get("PGDATABASE") or "(default db)"
        user = p.get("user") or os.environ.get("PGUSER") or "(os user)"
        return f"{user}@{host}:{port}/{db}"

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``asyncpg.connect`` / ``create_pool``."""
        p = self.params()
        kwargs: dict[str, Any] = {
            target: p[source] for source, target in _ASYNCPG_KEYS.items() if source in p
        }
        if "port" in kwargs:
            kwargs["port"] = int(kwargs["port"])
        if self.password is not None:
            kwargs["password"] = self.password
        if "sslmode" in p:
            kwargs["ssl"] = p["sslmode"]
        kwargs["server_settings"] = {
            "application_name": p.get("application_name", APPLICATION_NAME)
        }
        kwargs["timeout"] = self.connect_timeout
        return kwargs

    def libpq_env(self) -> dict[str, str]:
        """Environment for libpq tools (pg_dump, pg_restore): the password goes here only."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


class Database:
    """An asyncpg pool on one cluster plus helpers for dedicated connections."""

    def __init__(self, spec: ConnectionSpec, min_size: int = 1, max_size: int = 10) -> None:
        self.spec = spec
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Create the pool; raise ConnectionFailed with the DSN and cause."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                min_size=self._min_size,
                max_size=self._max_size,
                init=init_connection,
                **self.spec.asyncpg_kwargs(),
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connection_failed(self.spec, exc) from exc

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def max_size(self) -> int:
        """Most connections the pool opens."""
        return self._max_size

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool."""
        if self._pool is None:
            raise RuntimeError("Database.open() was not awaited")
        return self._pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection."""
        async with self.pool.acquire() as conn:
            yield cast(asyncpg.Connection, conn)

    async def connect(self, server_settings: dict[str, str] | None = None) -> asyncpg.Connection:
        """A dedicated connection outside the pool (caller closes it), with
        ``server_settings`` (e.g. ``application_name``) on top of the usual ones."""
        kwargs = self.spec.asyncpg_kwargs()
        kwargs["server_settings"] = {**kwargs["server_settings"], **(server_settings or {})}
        try:
            conn = cast(asyncpg.Connection, await asyncpg.connect(**kwargs))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connection_failed(self.spec, exc) from exc
        await init_connection(conn)
        return conn

    async def ping(self) -> None:
        """``SELECT 1`` on the pool, bounded by the connect timeout; ConnectionFailed (naming
        the DSN and the cause) when the cluster does not answer."""
        try:
            async with self.acquire() as conn:
                await conn.fetchval("SELECT 1", timeout=self.spec.connect_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise connection_failed(self.spec, exc) from exc

    async def in_recovery(self) -> bool:
        """Whether the cluster is a replica (``pg_is_in_recovery``)."""
        async with self.acquire() as conn:
            return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))

    async def chosen_server(self) -> str:
        """Where the pool's connections go, as the driver resolved it: socket path or host
        and port, database and user (never the password)."""
        seen: asyncio.Future[tuple[str, int] | str] = asyncio.get_running_loop().create_future()

        def logged(record: asyncpg.connection.LoggedQuery) -> None:
            if not seen.done():
                seen.set_result(record.conn_addr)

        async with self.acquire() as conn:
            conn.add_query_logger(logged)
            try:
                row = await conn.fetchrow("SELECT current_user AS u, current_database() AS d")
                addr = await seen
            finally:
                conn.remove_query_logger(logged)
        assert row is not None
        where = f"socket {addr}" if isinstance(addr, str) else f"host {addr[0]}, port {addr[1]}"
        return f"{where}, database {row['d']}, user {row['u']}"


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: json/jsonb <-> Python values."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def connection_failed(spec: ConnectionSpec, exc: BaseException) -> ConnectionFailed:
    """One-line error: which DSN, what failed, how to fix."""
    if isinstance(exc, TimeoutError):
        cause = f"no answer within {spec.connect_timeout:g} s (connect_timeout)"
    elif str(exc).strip():
        cause = str(exc).strip().splitlines()[0]
    else:
        cause = type(exc).__name__
    return ConnectionFailed(f"cannot connect to {spec.describe()}: {cause}", hint=CheckConnection())


async def connect_unpooled(dsn: str) -> asyncpg.Connection:
    """One plain connection to ``dsn`` without a statement cache (safe through PgBouncer in
    transaction mode); the caller closes it."""
    return await asyncpg.connect(dsn, statement_cache_size=0)


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` on the cluster of ``admin_dsn`` unless it exists."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
