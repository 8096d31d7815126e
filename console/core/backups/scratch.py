"""Scratch databases for restore tests: created empty with a unique name, always dropped.

A restore test restores a chain into ``goconsole_verify_<8 hex>`` (``CREATE DATABASE … TEMPLATE
template0``, so nothing of ``template1`` is in the way; the console's role needs CREATEDB) on the
tenant's cluster, compares it with the manifests and drops it, forcing out any session left
over. A failed drop is reported by :attr:`Scratch.drop_error`: the database is then named so an
operator can drop it.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import psycopg.conninfo

from console.core.db import ConnectionSpec, Database
from console.core.errors import OperationFailed
from console.core.identifiers import quote_ident
from console.core.operations import describe_error

PREFIX = "goconsole_verify_"


@dataclass
class Scratch:
    """A scratch database: its name, how to reach it, and why dropping it failed (if it did)."""

    name: str
    spec: ConnectionSpec
    drop_error: str | None = None


@asynccontextmanager
async def scratch_database(db: Database, spec: ConnectionSpec) -> AsyncIterator[Scratch]:
    """A new empty database on ``db``'s cluster, reached like ``spec`` but for its name;
    dropped at the end whatever happens."""
    name = f"{PREFIX}{secrets.token_hex(4)}"
    try:
        async with db.acquire() as conn:
            await conn.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")
    except asyncpg.PostgresError as exc:
        raise OperationFailed(
            f"cannot create the scratch database {name}: {describe_error(exc)} "
            "(a restore test needs the CREATEDB privilege)"
        ) from exc
    scratch = Scratch(
        name,
        dataclasses.replace(
            spec, conninfo=psycopg.conninfo.make_conninfo(spec.conninfo, dbname=name)
        ),
    )
    try:
        yield scratch
    finally:
        try:
            async with db.acquire() as conn:
                await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            scratch.drop_error = f"scratch database {name} was not dropped: {describe_error(exc)}"
