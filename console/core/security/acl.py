"""The application role's privileges as the catalogs record them: the documented interface
(README "Security model": CONNECT and TEMPORARY on the database, USAGE on schema ``public`` and
EXECUTE on ``public.resolve_tenant(text)``), and the queries listing every ACL entry and
default privilege that :mod:`~console.core.security.privileges` checks and
:mod:`~console.core.security.tighten` revokes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from console.core.identifiers import qualified, quote_ident

CONTROL_SCHEMA = "public"
INTERFACE_FUNCTION = "resolve_tenant"
INTERFACE_ARGS = "tenant_key text"
INTERFACE_SIGNATURE = f"{CONTROL_SCHEMA}.{INTERFACE_FUNCTION}(text)"
PUBLIC = "PUBLIC"
# Privileges the role may hold outside its tenant schemas: (kind, object, privilege).
EXPECTED = frozenset(
    {
        ("schema", CONTROL_SCHEMA, "USAGE"),
        ("function", INTERFACE_SIGNATURE, "EXECUTE"),
    }
)
EXPECTED_ON_DATABASE = frozenset({"CONNECT", "TEMPORARY"})
SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
DEFAULT_ACL_OBJECTS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
}

# Every ACL entry of relations, columns, functions and schemas in the namespaces $1 whose
# grantee is one of $2 (0 = PUBLIC). A NULL ACL means the built-in default (acldefault).
ACL_ENTRIES = """
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE oid = ANY($1::oid[])),
     g AS (SELECT unnest($2::oid[]) AS oid)
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind, ns.nspname AS schema,
       c.relname AS name, NULL::text AS detail, NULL::text AS types,
       a.privilege_type AS privilege, a.grantee, c.relowner AS owner
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
    (CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND a.grantee IN (SELECT oid FROM g)
UNION ALL
SELECT 'column', ns.nspname, c.relname, att.attname::text, NULL, a.privilege_type,
       a.grantee, c.relowner
FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
JOIN pg_attribute att ON att.attrelid = c.oid
CROSS JOIN LATERAL aclexplode(att.attacl) a
WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped
  AND a.grantee IN (SELECT oid FROM g)
UNION ALL
SELECT 'function', ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
       oidvectortypes(p.proargtypes), a.privilege_type, a.grantee, p.proowner
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE a.grantee IN (SELECT oid FROM g)
UNION ALL
SELECT 'schema', ns.nspname, ns.nspname, NULL, NULL, a.privilege_type, a.grantee, n.nspowner
FROM pg_namespace n JOIN ns ON ns.oid = n.oid
CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
WHERE a.grantee IN (SELECT oid FROM g)
ORDER BY 1, 2, 3, 4, 5
"""

DEFAULT_ACLS = """
SELECT pg_get_userbyid(d.defaclrole) AS owner, d.defaclnamespace = 0 AS global,
       d.defaclobjtype::text AS objtype, a.privilege_type AS privilege, a.grantee
FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a
WHERE (d.defaclnamespace = 0 OR d.defaclnamespace = to_regnamespace($1))
  AND a.grantee = ANY($2::oid[])
  AND NOT (d.defaclnamespace = 0 AND a.grantee = 0 AND d.defaclobjtype IN ('f', 'T'))
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class AclEntry:
    """One privilege of one grantee on one object."""

    kind: str
    schema: str
    name: str
    detail: str | None
    types: str | None
    privilege: str
    grantee: int
    owner: int

    @property
    def target(self) -> str:
        """The object as SQL after ``ON``: ``TABLE s.t``, ``ROUTINE s.f(args)``, ..."""
        if self.kind == "schema":
            return f"SCHEMA {quote_ident(self.schema)}"
        if self.kind == "function":
            return f"ROUTINE {qualified(self.schema, self.name)}({self.detail})"
        return f"{'SEQUENCE' if self.kind == 'sequence' else 'TABLE'} " + qualified(
            self.schema, self.name
        )

    @property
    def label(self) -> str:
        """The object as listed: ``public.tenants``, ``public.tenants.config``, ..."""
        if self.kind == "schema":
            return self.schema
        if self.kind == "function":
            return f"{self.schema}.{self.name}({self.types})"
        base = f"{self.schema}.{self.name}"
        return f"{base}.{self.detail}" if self.kind == "column" else base


async def role_row(conn: asyncpg.Connection, role: str) -> asyncpg.Record | None:
    """The role's oid and its superuser and bypass-RLS flags, or None when it does not exist."""
    return await conn.fetchrow(
        "SELECT oid, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role
    )


async def acl_entries(
    conn: asyncpg.Connection, namespaces: Sequence[int], grantees: Sequence[int]
) -> list[AclEntry]:
    """Every ACL entry in ``namespaces`` whose grantee is one of ``grantees`` (0: PUBLIC)."""
    rows = await conn.fetch(ACL_ENTRIES, list(namespaces), list(grantees))
    return [AclEntry(**dict(r)) for r in rows]


async def role_names(conn: asyncpg.Connection, oids: Iterable[int]) -> dict[int, str]:
    """Role names by oid, with 0 as PUBLIC."""
    rows = await conn.fetch(
        "SELECT oid, rolname FROM pg_roles WHERE oid = ANY($1::oid[])", list(oids)
    )
    return {0: PUBLIC, **{r["oid"]: r["rolname"] for r in rows}}


def default_acl_revoke(row: asyncpg.Record, grantee: str) -> str:
    """The statement dropping the default privileges of ``row`` (a DEFAULT_ACLS row)."""
    scope = "" if row["global"] else f" IN SCHEMA {quote_ident(CONTROL_SCHEMA)}"
    who = grantee if grantee == PUBLIC else quote_ident(grantee)
    return (
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(row['owner'])}{scope} "
        f"REVOKE ALL ON {DEFAULT_ACL_OBJECTS[row['objtype']]} FROM {who}"
    )
