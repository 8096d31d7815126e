"""Per-table content digests: what a backup records and a restore is checked against.

A table's digest is the sum, as a decimal string, of the first 64 bits of ``md5(row::text)``
over its rows: independent of row order (so a restored table compares equal however its rows
were written back), computed in one streaming pass by PostgreSQL, and the same on every server
version the console supports. Two tables with the same rows in the same column order digest
alike; any changed, missing or extra row changes it (short of a 2^-64 collision).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from console.core.identifiers import qualified
from console.core.migrations.tree import VERSION_TABLE

_ROW_HASH = "('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric"


@dataclass(frozen=True)
class TableDigest:
    """Row count and content digest of one table (or of a set of its rows)."""

    rows: int
    digest: str


def digest_sql(source: str) -> str:
    """``SELECT count, digest`` over the rows ``source`` yields (a qualified table name or a
    parenthesised subquery); the rows are referred to as ``r``."""
    return f"SELECT count(*)::bigint, coalesce(sum({_ROW_HASH}), 0)::text FROM {source} r"


async def table_digest(conn: asyncpg.Connection, schema: str, table: str) -> TableDigest:
    """Digest of one whole table, in the connection's current snapshot."""
    row = await conn.fetchrow(digest_sql(qualified(schema, table)))
    assert row is not None
    return TableDigest(row[0], row[1])


async def tenant_tables(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The schema's ordinary tables a backup covers (the version table is the tree's own), by
    name."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c "
        "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
        "AND c.relkind IN ('r', 'p') AND c.relname <> $2 ORDER BY c.relname",
        schema,
        VERSION_TABLE,
    )
    return [r[0] for r in rows]


async def schema_digests(
    conn: asyncpg.Connection, schema: str, tables: Sequence[str] | None = None
) -> dict[str, TableDigest]:
    """Digest of each table (default: every table :func:`tenant_tables` lists)."""
    names = list(tables) if tables is not None else await tenant_tables(conn, schema)
    return {name: await table_digest(conn, schema, name) for name in names}
