"""Schema statistics for every tenant schema in one catalog query (never one per tenant).

``pg_class`` has no index on ``relnamespace``: per-schema queries grow as N². One grouped query
costs ~15 ms for 2,000 schemas without sizes and ~0.3 s with ``pg_total_relation_size``, so
callers refresh sizes less often than the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from console.core.identifiers import TENANT_SCHEMA_PREFIX, qualified
from console.core.schema_tree import VERSION_TABLE

_UNION_CHUNK = 5000
_TENANT_LIKE = TENANT_SCHEMA_PREFIX.replace("_", "\\_") + "%"


@dataclass(frozen=True)
class SchemaStats:
    """Catalog figures of one tenant schema."""

    tables: int
    estimated_rows: int
    bytes: int | None


async def schema_stats(conn: asyncpg.Connection, with_sizes: bool) -> dict[str, SchemaStats]:
    """Stats of every ``tenant_*`` schema, keyed by schema name."""
    size = "sum(pg_total_relation_size(c.oid))::int8" if with_sizes else "NULL::int8"
    rows = await conn.fetch(
        f"""
        SELECT n.nspname AS schema, count(*) AS tables,
               sum(greatest(c.reltuples, 0))::int8 AS estimated_rows, {size} AS bytes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname LIKE $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2
        GROUP BY n.nspname
        """,
        _TENANT_LIKE,
        VERSION_TABLE,
    )
    return {r["schema"]: SchemaStats(r["tables"], r["estimated_rows"], r["bytes"]) for r in rows}


async def schema_revisions(conn: asyncpg.Connection) -> dict[str, str]:
    """Current tenant-tree revision of every tenant schema, from one query.

    Builds a UNION over the version tables that exist (found with one catalog query).
    """
    schemas = await conn.fetch(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = $1 AND n.nspname LIKE $2",
        VERSION_TABLE,
        _TENANT_LIKE,
    )
    names = [r[0] for r in schemas]
    result: dict[str, str] = {}
    for start in range(0, len(names), _UNION_CHUNK):
        chunk = names[start : start + _UNION_CHUNK]
        sql = " UNION ALL ".join(
            f"SELECT ${i}::text AS schema, version_num FROM {qualified(name, VERSION_TABLE)}"
            for i, name in enumerate(chunk, start=1)
        )
        for row in await conn.fetch(sql, *chunk):
            result[row["schema"]] = row["version_num"]
    return result
