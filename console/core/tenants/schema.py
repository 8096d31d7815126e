"""Work on one tenant schema: its revision, grants for the application role, access checks,
and a name-independent fingerprint of its catalog (to prove two schemas are built alike).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from console.core.errors import OperationFailed
from console.core.identifiers import qualified, quote_ident
from console.core.migrations.tree import VERSION_TABLE

# Tables the application role may only read and append to; all others get full DML.
APPEND_ONLY_TABLES = frozenset({"deletion_log"})
# Rows every tenant starts with: its categories.
INITIAL_CATEGORIES = ("Uncategorized",)
# SQLSTATE of an access breach found by the PL/pgSQL form of the access check.
ACCESS_BREACH_SQLSTATE = "GCVFY"
# Raised and caught inside that check, only to roll back what it did.
_CHECKED_SQLSTATE = "GCVOK"


async def schema_revision(conn: asyncpg.Connection, schema: str) -> tuple[bool, str | None]:
    """(schema exists, revision in its version table or None)."""
    row = await conn.fetchrow(
        "SELECT to_regnamespace($1) IS NOT NULL AS present, "
        "to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS versioned",
        schema,
        VERSION_TABLE,
    )
    assert row is not None
    if not row["present"]:
        return False, None
    if not row["versioned"]:
        return True, None
    revision = await conn.fetchval(f"SELECT version_num FROM {qualified(schema, VERSION_TABLE)}")
    return True, revision


async def drop_schema(conn: asyncpg.Connection, schema: str) -> None:
    """DROP SCHEMA ... CASCADE (if it exists)."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")


async def table_names(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The schema's tables, version table excluded (a scan of pg_class: cache where you can)."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2 ORDER BY 1",
        schema,
        VERSION_TABLE,
    )
    return [r[0] for r in rows]


def grant_statements(schema: str, app_role: str, tables: list[str]) -> list[str]:
    """The GRANTs giving the application role USAGE and DML on ``tables`` of ``schema``: the
    version table gets nothing; append-only tables get SELECT and INSERT."""
    role = quote_ident(app_role)
    statements = [f"GRANT USAGE ON SCHEMA {quote_ident(schema)} TO {role}"]
    for table in tables:
        rights = (
            "SELECT, INSERT" if table in APPEND_ONLY_TABLES else "SELECT, INSERT, UPDATE, DELETE"
        )
        statements.append(f"GRANT {rights} ON {qualified(schema, table)} TO {role}")
    return statements


async def grant_access(
    conn: asyncpg.Connection, schema: str, app_role: str, tables: list[str] | None = None
) -> int:
    """Give the application role USAGE and DML on the schema's data tables; return table count.

    Pass ``tables`` when known (a clone of the template): pg_class has no index on the
    namespace, so looking them up costs a scan that grows with every tenant.
    """
    if tables is None:
        tables = await table_names(conn, schema)
    await conn.execute(";\n".join(grant_statements(schema, app_role, tables)))
    return len(tables)


async def revoke_usage(conn: asyncpg.Connection, schema: str, app_role: str) -> None:
    """Block the application role from the schema (existing table grants stay)."""
    await conn.execute(f"REVOKE USAGE ON SCHEMA {quote_ident(schema)} FROM {quote_ident(app_role)}")


async def seed_initial_data(conn: asyncpg.Connection, schema: str, tenant_id: uuid.UUID) -> None:
    """Initial data every tenant starts with (idempotent)."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant_id))
        await conn.execute(
            f"INSERT INTO {qualified(schema, 'categories')} (name) "
            "SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            list(INITIAL_CATEGORIES),
        )


def verify_details(app_role: str) -> dict[str, Any]:
    """What a passed access verification records in its audit row."""
    return {"role": app_role, "own_rows": 1, "foreign_rows": 0, "foreign_write": "refused"}


async def verify_access(
    conn: asyncpg.Connection, schema: str, tenant_id: uuid.UUID, app_role: str
) -> dict[str, Any]:
    """As the application role: own rows are writable and readable, another tenant's id sees
    none and cannot write. Everything is rolled back. Raises OperationFailed on any breach."""
    customers = qualified(schema, "customers")
    set_tenant = "SELECT set_config('app.current_tenant_id', $1, true)"
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {quote_ident(app_role)}")
        await conn.execute(set_tenant, str(tenant_id))
        row_id = await conn.fetchval(
            f"INSERT INTO {customers} (email, full_name) VALUES ($1, $2) RETURNING id",
            "verify@goconsole.invalid",
            "goconsole access check",
        )
        own = await conn.fetchval(f"SELECT count(*) FROM {customers} WHERE id = $1", row_id)
        if own != 1:
            raise OperationFailed(f"{app_role} cannot read its own row in {schema}")
        await conn.execute(set_tenant, str(uuid.uuid4()))
        foreign = await conn.fetchval(f"SELECT count(*) FROM {customers}")
        if foreign != 0:
            raise OperationFailed(
                f"row-level security leaks: another tenant id sees {foreign} rows"
            )
        try:
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {customers} (email, full_name) VALUES ($1, $2)",
                    "intruder@goconsole.invalid",
                    "must be refused",
                )
        except asyncpg.InsufficientPrivilegeError:
            pass
        else:
            raise OperationFailed("row-level security lets another tenant id write rows")
    finally:
        await tx.rollback()
    return verify_details(app_role)


def access_check_plpgsql(schema: str, tenant_id: uuid.UUID, app_role: str) -> str:
    """The checks of :func:`verify_access` as a PL/pgSQL block, to embed in a DO body so that a
    provision can verify in the same message that builds the schema. As the application role:
    its own row is writable and readable, another tenant id sees none and cannot write. A
    breach raises SQLSTATE ``ACCESS_BREACH_SQLSTATE``; other errors (no privilege) propagate as
    they are; on success everything the checks did (role, tenant id, rows) is rolled back."""
    customers = qualified(schema, "customers")
    own, other = uuid.UUID(str(tenant_id)), uuid.uuid4()
    breach = f"RAISE EXCEPTION USING ERRCODE = '{ACCESS_BREACH_SQLSTATE}', MESSAGE ="
    return f"""
    DECLARE
        row_id uuid;
        seen bigint;
    BEGIN
        SET LOCAL ROLE {quote_ident(app_role)};
        PERFORM set_config('app.current_tenant_id', '{own}', true);
        INSERT INTO {customers} (email, full_name)
            VALUES ('verify@goconsole.invalid', 'goconsole access check') RETURNING id INTO row_id;
        SELECT count(*) INTO seen FROM {customers} WHERE id = row_id;
        IF seen <> 1 THEN
            {breach} current_user || ' cannot read its own row';
        END IF;
        PERFORM set_config('app.current_tenant_id', '{other}', true);
        SELECT count(*) INTO seen FROM {customers};
        IF seen <> 0 THEN
            {breach} 'row-level security leaks: another tenant id sees ' || seen || ' rows';
        END IF;
        BEGIN
            INSERT INTO {customers} (email, full_name)
                VALUES ('intruder@goconsole.invalid', 'must be refused');
            {breach} 'row-level security lets another tenant id write rows';
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
        RAISE EXCEPTION USING ERRCODE = '{_CHECKED_SQLSTATE}';
    EXCEPTION WHEN SQLSTATE '{_CHECKED_SQLSTATE}' THEN
        NULL;
    END;"""


async def catalog_fingerprint(
    conn: asyncpg.Connection, schema: str, tenant_id: uuid.UUID
) -> dict[str, list[Any]]:
    """Everything that defines a tenant schema, with its name and tenant id replaced by
    placeholders, so schemas built by different paths compare equal when built alike."""
    queries = {
        "columns": """
            SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relnamespace = {ns} AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY 1, 2""",
        "relations": """
            SELECT relname, relkind, relrowsecurity, relforcerowsecurity,
                   coalesce(relacl::text, '')
            FROM pg_class WHERE relnamespace = {ns} ORDER BY 1""",
        "constraints": """
            SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE k.connamespace = {ns} ORDER BY 1, 2""",
        "indexes": """
            SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1""",
        "triggers": """
            SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = {ns} AND NOT t.tgisinternal ORDER BY 1, 2""",
        "policies": """
            SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
            FROM pg_policies WHERE schemaname = $1 ORDER BY 1, 2""",
        "functions": """
            SELECT proname, pg_get_function_identity_arguments(oid), prosrc,
                   coalesce(proconfig::text, ''), coalesce(proacl::text, '')
            FROM pg_proc WHERE pronamespace = {ns} ORDER BY 1, 2""",
        "schema": """
            SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = $1""",
    }
    namespace = "(SELECT oid FROM pg_namespace WHERE nspname = $1)"
    result: dict[str, list[Any]] = {}
    for name, sql in queries.items():
        rows = await conn.fetch(sql.replace("{ns}", namespace), schema)
        result[name] = [
            [_neutral(value, schema, tenant_id) for value in row.values()] for row in rows
        ]
    exists, revision = await schema_revision(conn, schema)
    result["revision"] = [exists, revision]
    return result


def _neutral(value: Any, schema: str, tenant_id: uuid.UUID) -> Any:
    if isinstance(value, str):
        return value.replace(schema, "<schema>").replace(str(tenant_id), "<tenant-id>")
    return value
