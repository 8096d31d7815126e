"""``goconsole init`` tightens the control schema: the application role keeps exactly the
documented interface there (:mod:`~console.core.security.acl`), whatever an older version, or
anyone, granted beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from console.core.errors import InvalidState
from console.core.hints import RunInit
from console.core.identifiers import qualified, quote_ident
from console.core.security.acl import (
    CONTROL_SCHEMA,
    DEFAULT_ACLS,
    INTERFACE_FUNCTION,
    INTERFACE_SIGNATURE,
    PUBLIC,
    AclEntry,
    acl_entries,
    default_acl_revoke,
    role_row,
)


async def tighten_control_schema(
    conn: asyncpg.Connection, app_role: str, public_fields: Sequence[str]
) -> list[str]:
    """Make the application role's access to the control schema exactly the interface: revoke
    every other privilege it or PUBLIC holds there (including what older versions granted),
    CREATE on ``public`` from PUBLIC, default privileges giving it anything there; grant USAGE
    on the schema and EXECUTE on the interface; store the public config fields. Returns what
    changed, one line each (empty when it already was so). Run inside a transaction."""
    role = await role_row(conn, app_role)
    if role is None:
        raise InvalidState(f"application role {app_role!r} does not exist", hint=RunInit())
    app = role["oid"]
    schema_oid = await conn.fetchval("SELECT to_regnamespace($1)::oid", CONTROL_SCHEMA)
    if await conn.fetchval("SELECT to_regprocedure($1)", INTERFACE_SIGNATURE) is None:
        raise InvalidState(
            f"{INTERFACE_SIGNATURE} is missing although the control schema is at "
            "0002_registry_interface or later: recreate it from "
            "migrations/control/versions/0002_registry_interface.py"
        )
    names = {app: app_role, 0: PUBLIC}
    extra = [
        e
        for e in await acl_entries(conn, [schema_oid], [app, 0])
        if e.grantee != e.owner and not _allowed_in_control(e, app)
    ]
    for entry in extra:
        await conn.execute(_revoke_statement(entry, app_role, app))
    # A REVOKE by a role that neither owns the object nor granted the privilege changes nothing
    # (PostgreSQL only warns): say so instead of claiming it.
    left = set(await acl_entries(conn, [schema_oid], [app, 0]))
    changes = [
        f"could not revoke {e.privilege} on {e.kind} {e.label} from {names[e.grantee]} (the "
        f"console's role is not its owner; as the owner run: {_revoke_statement(e, app_role, app)})"
        if e in left
        else f"revoked {e.privilege} on {e.kind} {e.label} from {names[e.grantee]}"
        for e in extra
    ]
    changes += await _grant_interface(conn, app_role, app)
    changes += await _revoke_default_acls(conn, app_role, app)
    changes += await _sync_public_fields(conn, public_fields)
    return changes


def _revoke_statement(entry: AclEntry, app_role: str, app: int) -> str:
    grantee = quote_ident(app_role) if entry.grantee == app else PUBLIC
    column = f" ({quote_ident(entry.detail or '')})" if entry.kind == "column" else ""
    return f"REVOKE {entry.privilege}{column} ON {entry.target} FROM {grantee}"


def _allowed_in_control(entry: AclEntry, app: int) -> bool:
    """Kept by init: PUBLIC's USAGE on ``public`` (PostgreSQL's default), the role's USAGE and
    its EXECUTE on the interface."""
    if entry.kind == "schema" and entry.privilege == "USAGE":
        return True
    return (
        entry.kind == "function"
        and entry.grantee == app
        and entry.label == INTERFACE_SIGNATURE
        and entry.privilege == "EXECUTE"
    )


async def _grant_interface(conn: asyncpg.Connection, app_role: str, app: int) -> list[str]:
    role = quote_ident(app_role)
    changes = []
    for kind, target, privilege, label in (
        ("schema", f"SCHEMA {quote_ident(CONTROL_SCHEMA)}", "USAGE", CONTROL_SCHEMA),
        (
            "function",
            f"FUNCTION {qualified(CONTROL_SCHEMA, INTERFACE_FUNCTION)}(text)",
            "EXECUTE",
            INTERFACE_SIGNATURE,
        ),
    ):
        acl_column = "nspacl" if kind == "schema" else "proacl"
        catalog = "pg_namespace" if kind == "schema" else "pg_proc"
        key = "to_regnamespace($2)" if kind == "schema" else "to_regprocedure($2)"
        granted = await conn.fetchval(
            f"SELECT EXISTS (SELECT FROM {catalog} o, aclexplode(o.{acl_column}) a "
            f"WHERE o.oid = {key} AND a.grantee = $1 AND a.privilege_type = $3)",
            app,
            label,
            privilege,
        )
        if not granted:
            await conn.execute(f"GRANT {privilege} ON {target} TO {role}")
            changes.append(f"granted {privilege} on {kind} {label} to {app_role}")
    return changes


async def _revoke_default_acls(conn: asyncpg.Connection, app_role: str, app: int) -> list[str]:
    """Drop default privileges that would give the role (or PUBLIC, in the control schema)
    something on objects created later there."""
    rows = await conn.fetch(DEFAULT_ACLS, CONTROL_SCHEMA, [app, 0])
    done: set[tuple[str, bool, str, int]] = set()
    changes = []
    for row in rows:
        if row["global"] and row["grantee"] != app:
            continue  # a global grant to PUBLIC is not the control schema's business alone
        key = (row["owner"], row["global"], row["objtype"], row["grantee"])
        if key in done:
            continue
        done.add(key)
        statement = default_acl_revoke(row, app_role if row["grantee"] == app else PUBLIC)
        await conn.execute(statement)
        changes.append(f"removed default privileges: {statement}")
    return changes


async def _sync_public_fields(conn: asyncpg.Connection, fields: Sequence[str]) -> list[str]:
    removed = await conn.fetch(
        "DELETE FROM public.registry_public_fields WHERE field <> ALL($1::text[]) RETURNING field",
        list(fields),
    )
    added = await conn.fetch(
        "INSERT INTO public.registry_public_fields (field) SELECT unnest($1::text[]) "
        "ON CONFLICT DO NOTHING RETURNING field",
        list(fields),
    )
    return [f"config field {r['field']!r} is no longer public" for r in removed] + [
        f"config field {r['field']!r} is now public (returned by {INTERFACE_SIGNATURE})"
        for r in added
    ]
