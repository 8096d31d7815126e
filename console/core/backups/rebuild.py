"""Building a tenant's schema from a backup chain under another name (a restore's recovery
schema, a drill's scratch schema), and validating it before anything relies on it.

The full goes through :func:`~console.core.backups.rename.restore_renamed` and each table is
compared with its manifest (rows and digest); each incremental is applied by
:meth:`ChainRestorer.apply_incremental` to the new schema (rows, and the digest of the rows it
holds, checked before it commits). Validation then checks, on the built schema: each table's
row count equals the last link's manifest; row-level security is enabled and forced on every
table, with policies naming the tenant's own id and no other; the application role cannot reach
it; and its tree revision is the tenant tree's head (a schema from an older revision is first
migrated to head through the migrations path).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console.core.backups.digest import tenant_tables
from console.core.backups.pgrestore import RestoreRun
from console.core.backups.rename import restore_renamed
from console.core.backups.restore import (
    ChainRestorer,
    Link,
    LinkTiming,
    see_tenant_rows,
)
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec
from console.core.errors import OperationFailed
from console.core.identifiers import quote_ident
from console.core.migrations.tree import AlembicRunner
from console.core.tenants.schema import schema_revision

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ValidationFailed(OperationFailed):
    """A built schema is not what the backups say (the live tenant is untouched)."""

    title = "Validation failed"


@dataclass
class Validation:
    """What validation found: rows per table, the checks that passed, a migration done."""

    rows: dict[str, int] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    migrated_from: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "result": "ok",
            "rows": self.rows,
            "checks": self.checks,
            "migrated_from": self.migrated_from,
        }


async def build_full(
    binaries: PgBinaries,
    restorer: ChainRestorer,
    target: ConnectionSpec,
    link: Link,
) -> LinkTiming:
    """Restore the full of ``link`` into schema ``link.into`` and check every table."""
    assert link.into is not None
    old, new = str(link.manifest["tenant"]["schema"]), link.into

    async def renamed(fd: int, major: int) -> RestoreRun:
        return await restore_renamed(binaries, target, fd, old, new, major)

    return await restorer.restore_full(target, link, renamed)


async def mark(conn: asyncpg.Connection, schema: str, note: dict[str, Any] | None) -> None:
    """Set (or clear, ``None``) the JSON comment of ``schema``."""
    text = json.dumps(note) if note is not None else None
    literal = "NULL" if text is None else "'" + text.replace("'", "''") + "'"
    await conn.execute(f"COMMENT ON SCHEMA {quote_ident(schema)} IS {literal}")


async def validate(
    conn: asyncpg.Connection,
    alembic: AlembicRunner,
    link: Link,
    app_role: str,
    head: str,
) -> Validation:
    """Validate schema ``link.into`` against the last applied ``link`` (see the module);
    ValidationFailed names the first problem."""
    schema = link.schema
    found = Validation()
    _, revision = await schema_revision(conn, schema)
    if revision != head:
        if revision is None:
            raise ValidationFailed(f"{schema} has no tree revision")
        await asyncio.to_thread(alembic.upgrade_tenant, schema, link.tenant_id, head)
        found.migrated_from = revision
        found.checks.append(f"migrated from {revision} to {head}")
    found.checks.append(f"tree revision {head}")
    await see_tenant_rows(conn, link, local=False)
    for name, expected in link.manifest["tables"].items():
        rows = await conn.fetchval(
            f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(name)}"
        )
        if rows != expected["rows"]:
            raise ValidationFailed(
                f"{schema}.{name}: {rows} rows, {expected['rows']} in the manifest of backup "
                f"{link.record.id}"
            )
        found.rows[name] = rows
    found.checks.append("rows per table as in the manifest")
    await _check_rls(conn, schema, link.tenant_id)
    found.checks.append("row-level security enabled, forced, own policy on every table")
    if await conn.fetchval("SELECT has_schema_privilege($1, $2, 'USAGE')", app_role, schema):
        raise ValidationFailed(f"{app_role} can reach {schema} before the switch")
    found.checks.append(f"{app_role} has no access before the switch")
    return found


async def _check_rls(conn: asyncpg.Connection, schema: str, tenant_id: str) -> None:
    tables = await tenant_tables(conn, schema)
    rows = await conn.fetch(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "array_remove(array_agg(coalesce(p.qual, '') || ' ' || coalesce(p.with_check, '')), "
        "NULL) AS policies, count(p.policyname) AS n FROM pg_class c "
        "LEFT JOIN pg_policies p ON p.schemaname = $1 AND p.tablename = c.relname "
        "WHERE c.relnamespace = to_regnamespace($1) AND c.relname = ANY($2::text[]) "
        "GROUP BY 1, 2, 3",
        schema,
        tables,
    )
    for row in rows:
        table = f"{schema}.{row['relname']}"
        if not (row["relrowsecurity"] and row["relforcerowsecurity"]):
            raise ValidationFailed(f"{table}: row-level security is not enabled and forced")
        if row["n"] == 0:
            raise ValidationFailed(f"{table}: no row-level security policy")
        for text in row["policies"]:
            ids = set(_UUID.findall(text))
            if ids != {tenant_id}:
                raise ValidationFailed(
                    f"{table}: a policy does not compare the tenant's own id ({text.strip()})"
                )
