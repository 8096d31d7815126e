"""The template tenant schema, kept at the tenant tree's head, and the fast clone of its DDL.

Cloning executes the template's DDL (from ``pg_dump --schema-only``) with the schema name and
tenant id swapped: ~10 ms per tenant against ~40 ms through alembic, with the same catalog.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass

import asyncpg

from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec
from console.core.errors import OperationFailed
from console.core.identifiers import TEMPLATE_SCHEMA, SqlTemplate, qualified
from console.core.migrations.tree import VERSION_TABLE, AlembicRunner, head_revision
from console.core.tenants.schema import drop_schema, schema_revision, table_names

# The template's policies name this id; clones get their own tenant id instead.
TEMPLATE_TENANT_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class TemplateDDL:
    """The template's DDL at one revision, ready to clone."""

    revision: str
    namespace_oid: int
    sql: str
    tables: list[str]

    @functools.cached_property
    def _template(self) -> SqlTemplate:
        return SqlTemplate(self.sql, TEMPLATE_SCHEMA, TEMPLATE_TENANT_ID)

    def for_tenant(self, schema: str, tenant_id: uuid.UUID) -> str:
        """The DDL rewritten for ``schema`` and ``tenant_id``."""
        return self._template.render(schema, tenant_id)


def clean_dump(text: str) -> str:
    """Keep only the SQL statements of a ``pg_dump`` plain script: no psql meta-commands
    (``\\restrict``), session SETs, ``set_config`` calls or comments."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if (
            stripped.startswith(("\\", "--", "SET "))
            or stripped.startswith("SELECT pg_catalog.set_config(")
            or not stripped
        ):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


class TemplateSchema:
    """Builds the template schema and hands out its DDL for cloning (cached per revision)."""

    def __init__(self, spec: ConnectionSpec, binaries: PgBinaries, alembic: AlembicRunner) -> None:
        self._spec = spec
        self._binaries = binaries
        self._alembic = alembic
        self._cached: TemplateDDL | None = None
        self._lock = asyncio.Lock()

    async def ensure(self, conn: asyncpg.Connection) -> str:
        """Create the template or rebuild it at head; return its revision.

        The template is only a cache of DDL: one at another revision (possibly one this version
        does not know, which alembic could not upgrade from) is dropped and built afresh.
        """
        head = head_revision("tenant")
        exists, revision = await schema_revision(conn, TEMPLATE_SCHEMA)
        if revision != head:
            if exists:
                await drop_schema(conn, TEMPLATE_SCHEMA)
            await asyncio.to_thread(
                self._alembic.upgrade_tenant, TEMPLATE_SCHEMA, str(TEMPLATE_TENANT_ID)
            )
            self._cached = None
        return head

    async def ddl(self, conn: asyncpg.Connection) -> TemplateDDL | str:
        """The template's DDL when it exists at head; otherwise why it cannot be used."""
        head = head_revision("tenant")
        row = await conn.fetchrow(
            "SELECT oid::int8 AS oid, to_regclass(format('%I.%I', nspname, $2::text)) "
            "IS NOT NULL AS versioned FROM pg_namespace WHERE nspname = $1",
            TEMPLATE_SCHEMA,
            VERSION_TABLE,
        )
        if row is None or not row["versioned"]:
            return f"template schema {TEMPLATE_SCHEMA} is missing (init builds it)"
        revision = await conn.fetchval(
            f"SELECT version_num FROM {qualified(TEMPLATE_SCHEMA, VERSION_TABLE)}"
        )
        if revision != head:
            return f"template schema is at {revision}, head is {head} (init rebuilds it)"
        async with self._lock:
            cached = self._cached
            if cached is None or (cached.revision, cached.namespace_oid) != (revision, row["oid"]):
                cached = TemplateDDL(
                    revision,
                    row["oid"],
                    await self._dump(),
                    await table_names(conn, TEMPLATE_SCHEMA),
                )
                self._cached = cached
        return cached

    async def _dump(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            str(self._binaries.tool("pg_dump")),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema",
            TEMPLATE_SCHEMA,
            "--dbname",
            self._spec.conninfo,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._spec.libpq_env(),
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise OperationFailed(f"pg_dump of the template failed: {err.decode().strip()}")
        return clean_dump(out.decode())

    async def clone(
        self, conn: asyncpg.Connection, ddl: TemplateDDL, schema: str, tenant_id: uuid.UUID
    ) -> None:
        """Create ``schema`` from the template's DDL and stamp its revision, in one transaction."""
        async with conn.transaction():
            await conn.execute(ddl.for_tenant(schema, tenant_id))
            await conn.execute(
                f"INSERT INTO {qualified(schema, VERSION_TABLE)} (version_num) VALUES ($1)",
                ddl.revision,
            )
