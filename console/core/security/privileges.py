"""What the application role may do outside its tenant schemas, and keeping it that way.

The documented interface (README "Security model"): CONNECT and TEMPORARY on the database,
USAGE on schema ``public`` and EXECUTE on ``public.resolve_tenant(text)`` (a SECURITY DEFINER
function of the control tree). Nothing else in the control schema. :func:`check_privileges`
lists every privilege the role holds outside its tenant schemas and flags the rest;
:func:`tighten_control_schema` (run by ``goconsole init``) revokes what an older version, or
anyone, granted beyond the interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from console.core.errors import InvalidState
from console.core.identifiers import qualified, quote_ident
from console.core.migrations.tree import VERSION_TABLE

CONTROL_SCHEMA = "public"
INTERFACE_FUNCTION = "resolve_tenant"
INTERFACE_ARGS = "tenant_key text"
INTERFACE_SIGNATURE = f"{CONTROL_SCHEMA}.{INTERFACE_FUNCTION}(text)"
_PUBLIC = "PUBLIC"
# Privileges the role may hold outside its tenant schemas: (kind, object, privilege).
EXPECTED = frozenset(
    {
        ("schema", CONTROL_SCHEMA, "USAGE"),
        ("function", INTERFACE_SIGNATURE, "EXECUTE"),
    }
)
EXPECTED_ON_DATABASE = frozenset({"CONNECT", "TEMPORARY"})
_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
_DEFAULT_ACL_OBJECTS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
}

# Every ACL entry of relations, columns, functions and schemas in the namespaces $1 whose
# grantee is one of $2 (0 = PUBLIC). A NULL ACL means the built-in default (acldefault).
_ACL_ENTRIES = """
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

_DEFAULT_ACLS = """
SELECT pg_get_userbyid(d.defaclrole) AS owner, d.defaclnamespace = 0 AS global,
       d.defaclobjtype::text AS objtype, a.privilege_type AS privilege, a.grantee
FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a
WHERE (d.defaclnamespace = 0 OR d.defaclnamespace = to_regnamespace($1))
  AND a.grantee = ANY($2::oid[])
  AND NOT (d.defaclnamespace = 0 AND a.grantee = 0 AND d.defaclobjtype IN ('f', 'T'))
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class Privilege:
    """One privilege the application role holds outside its tenant schemas.

    ``via`` is whom it was granted to: the role itself, PUBLIC, a role it inherits from, or
    ``owner`` when the role owns the object.
    """

    kind: str
    object: str
    privilege: str
    via: str
    expected: bool


@dataclass(frozen=True)
class Finding:
    """Something the application role can do that it should not (or an interface flaw)."""

    problem: str
    fix: str


@dataclass(frozen=True)
class PrivilegeReport:
    """The result of :func:`check_privileges`; ``clean`` when nothing was found."""

    role: str
    database: str
    privileges: list[Privilege]
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        """No findings."""
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "role": self.role,
            "database": self.database,
            "clean": self.clean,
            "privileges": [asdict(p) for p in self.privileges],
            "findings": [asdict(f) for f in self.findings],
        }


@dataclass(frozen=True)
class _Entry:
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


async def _role(conn: asyncpg.Connection, role: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT oid, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role
    )


async def _entries(
    conn: asyncpg.Connection, namespaces: Sequence[int], grantees: Sequence[int]
) -> list[_Entry]:
    rows = await conn.fetch(_ACL_ENTRIES, list(namespaces), list(grantees))
    return [_Entry(**dict(r)) for r in rows]


async def _names(conn: asyncpg.Connection, oids: Iterable[int]) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT oid, rolname FROM pg_roles WHERE oid = ANY($1::oid[])", list(oids)
    )
    return {0: _PUBLIC, **{r["oid"]: r["rolname"] for r in rows}}


# -- init: tighten the control schema ------------------------------------------------------------


async def tighten_control_schema(
    conn: asyncpg.Connection, app_role: str, public_fields: Sequence[str]
) -> list[str]:
    """Make the application role's access to the control schema exactly the interface: revoke
    every other privilege it or PUBLIC holds there (including what older versions granted),
    CREATE on ``public`` from PUBLIC, default privileges giving it anything there; grant USAGE
    on the schema and EXECUTE on the interface; store the public config fields. Returns what
    changed, one line each (empty when it already was so). Run inside a transaction."""
    role = await _role(conn, app_role)
    if role is None:
        raise InvalidState(f"application role {app_role!r} does not exist; run goconsole init")
    app = role["oid"]
    schema_oid = await conn.fetchval("SELECT to_regnamespace($1)::oid", CONTROL_SCHEMA)
    if await conn.fetchval("SELECT to_regprocedure($1)", INTERFACE_SIGNATURE) is None:
        raise InvalidState(
            f"{INTERFACE_SIGNATURE} is missing although the control schema is at "
            "0002_registry_interface or later: recreate it from "
            "migrations/control/versions/0002_registry_interface.py"
        )
    names = {app: app_role, 0: _PUBLIC}
    extra = [
        e
        for e in await _entries(conn, [schema_oid], [app, 0])
        if e.grantee != e.owner and not _allowed_in_control(e, app)
    ]
    for entry in extra:
        await conn.execute(_revoke_statement(entry, app_role, app))
    # A REVOKE by a role that neither owns the object nor granted the privilege changes nothing
    # (PostgreSQL only warns): say so instead of claiming it.
    left = set(await _entries(conn, [schema_oid], [app, 0]))
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


def _revoke_statement(entry: _Entry, app_role: str, app: int) -> str:
    grantee = quote_ident(app_role) if entry.grantee == app else _PUBLIC
    column = f" ({quote_ident(entry.detail or '')})" if entry.kind == "column" else ""
    return f"REVOKE {entry.privilege}{column} ON {entry.target} FROM {grantee}"


def _allowed_in_control(entry: _Entry, app: int) -> bool:
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
    rows = await conn.fetch(_DEFAULT_ACLS, CONTROL_SCHEMA, [app, 0])
    done: set[tuple[str, bool, str, int]] = set()
    changes = []
    for row in rows:
        if row["global"] and row["grantee"] != app:
            continue  # a global grant to PUBLIC is not the control schema's business alone
        key = (row["owner"], row["global"], row["objtype"], row["grantee"])
        if key in done:
            continue
        done.add(key)
        statement = _default_acl_revoke(row, app_role if row["grantee"] == app else _PUBLIC)
        await conn.execute(statement)
        changes.append(f"removed default privileges: {statement}")
    return changes


def _default_acl_revoke(row: asyncpg.Record, grantee: str) -> str:
    scope = "" if row["global"] else f" IN SCHEMA {quote_ident(CONTROL_SCHEMA)}"
    who = grantee if grantee == _PUBLIC else quote_ident(grantee)
    return (
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(row['owner'])}{scope} "
        f"REVOKE ALL ON {_DEFAULT_ACL_OBJECTS[row['objtype']]} FROM {who}"
    )


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


# -- check-privileges --------------------------------------------------------------------------


async def check_privileges(conn: asyncpg.Connection, app_role: str) -> PrivilegeReport:
    """Every privilege ``app_role`` holds outside its tenant schemas (directly, through PUBLIC,
    through roles it inherits from, or as owner), and findings: anything beyond the documented
    interface, a superuser or BYPASSRLS role, role memberships, a tenant table without enabled
    and forced RLS, a tenant schema or table it owns, CREATE on a tenant schema, default
    privileges giving it objects created later, and a missing or unsafe interface."""
    if await conn.fetchval("SELECT to_regclass('public.tenants')") is None:
        raise InvalidState("the control schema is missing: run goconsole init first")
    database = await conn.fetchval("SELECT current_database()")
    role = await _role(conn, app_role)
    if role is None:
        return PrivilegeReport(
            app_role,
            database,
            [],
            [Finding(f"application role {app_role} does not exist", "goconsole init")],
        )
    app = role["oid"]
    console = quote_ident(await conn.fetchval("SELECT current_user"))
    findings = _role_findings(app_role, role)
    inherited = await conn.fetch(
        "SELECT oid, rolname FROM pg_roles WHERE oid <> $1 AND pg_has_role($1, oid, 'MEMBER') "
        "ORDER BY rolname",
        app,
    )
    privileges = [
        Privilege("membership", r["rolname"], "MEMBER", app_role, False) for r in inherited
    ]
    findings += [
        Finding(
            f"{app_role} is a member of {r['rolname']} (it can use that role's privileges)",
            f"REVOKE {quote_ident(r['rolname'])} FROM {quote_ident(app_role)}",
        )
        for r in inherited
    ]
    grantees = [app, 0, *(r["oid"] for r in inherited)]
    names = await _names(conn, grantees)
    held_database, db_findings = await _database_privileges(
        conn, app_role, grantees, names, console
    )
    privileges += held_database
    findings += db_findings
    held, object_findings = await _object_privileges(conn, app_role, app, grantees, names, console)
    privileges += held
    findings += object_findings
    findings += await _interface_findings(conn, app_role, console)
    findings += await _default_acl_findings(conn, app_role, grantees, names)
    findings += await _tenant_findings(conn, app_role, app, console)
    return PrivilegeReport(app_role, database, privileges, findings)


def _role_findings(app_role: str, role: asyncpg.Record) -> list[Finding]:
    quoted = quote_ident(app_role)
    found = []
    if role["rolsuper"]:
        found.append(
            Finding(
                f"{app_role} is a superuser: it bypasses every privilege and RLS",
                f"ALTER ROLE {quoted} NOSUPERUSER",
            )
        )
    if role["rolbypassrls"]:
        found.append(
            Finding(
                f"{app_role} has BYPASSRLS: row-level security does not apply to it",
                f"ALTER ROLE {quoted} NOBYPASSRLS",
            )
        )
    return found


async def _database_privileges(
    conn: asyncpg.Connection,
    app_role: str,
    grantees: list[int],
    names: dict[int, str],
    console: str,
) -> tuple[list[Privilege], list[Finding]]:
    rows = await conn.fetch(
        "SELECT d.datname, a.privilege_type, a.grantee, a.grantee = d.datdba AS owned "
        "FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
        "WHERE d.datname = current_database() AND a.grantee = ANY($1::oid[]) ORDER BY 2, 3",
        grantees,
    )
    held, found = [], []
    for r in rows:
        via = "owner" if r["owned"] else names[r["grantee"]]
        expected = r["privilege_type"] in EXPECTED_ON_DATABASE and not r["owned"]
        held.append(Privilege("database", r["datname"], r["privilege_type"], via, expected))
        if not expected and not r["owned"]:
            target = f"DATABASE {quote_ident(r['datname'])}"
            found.append(
                Finding(
                    f"{app_role} holds {r['privilege_type']} on database {r['datname']} "
                    f"(via {via})",
                    _revoke_fix(r["privilege_type"], target, via, app_role),
                )
            )
    owned = {r["datname"] for r in rows if r["owned"]}
    found += [
        Finding(
            f"{app_role} owns database {name} (so holds every privilege on it and on schema "
            "public)",
            f"ALTER DATABASE {quote_ident(name)} OWNER TO {console}",
        )
        for name in sorted(owned)
    ]
    return held, found


async def _object_privileges(
    conn: asyncpg.Connection,
    app_role: str,
    app: int,
    grantees: list[int],
    names: dict[int, str],
    console: str,
) -> tuple[list[Privilege], list[Finding]]:
    namespaces = [
        r[0]
        for r in await conn.fetch(
            f"SELECT n.oid FROM pg_namespace n WHERE n.nspname NOT IN {_SYSTEM_SCHEMAS} "
            "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "
            "AND n.nspname NOT IN (SELECT schema_name FROM public.tenants) ORDER BY n.nspname"
        )
    ]
    entries = await _entries(conn, namespaces, grantees)
    usable = {e.schema for e in entries if e.kind == "schema" and e.privilege == "USAGE"}
    held, found = [], []
    for e in entries:
        if e.kind == "function" and e.grantee == 0 and e.schema not in usable:
            continue  # PostgreSQL's default EXECUTE for PUBLIC, unreachable without USAGE
        owner = e.grantee == e.owner
        via = "owner" if owner else names[e.grantee]
        expected = (
            not owner
            and (e.kind, e.label, e.privilege) in EXPECTED
            and (e.kind == "schema" or e.grantee == app)
        )
        held.append(Privilege(e.kind, e.label, e.privilege, via, expected))
        if not expected:
            found.append(_object_finding(e, app_role, via, console))
    return held, found


def _object_finding(entry: _Entry, app_role: str, via: str, console: str) -> Finding:
    what = f"{entry.privilege} on {entry.kind} {entry.label}"
    if via == "owner":
        kind = {"column": "TABLE", "sequence": "SEQUENCE"}.get(entry.kind, entry.target.split()[0])
        target = entry.target.split(" ", 1)[1]
        return Finding(
            f"{app_role} owns {entry.kind} {entry.label} (so holds every privilege on it)",
            f"ALTER {kind} {target} OWNER TO {console}",
        )
    column = f" ({quote_ident(entry.detail or '')})" if entry.kind == "column" else ""
    fix = _revoke_fix(f"{entry.privilege}{column}", entry.target, via, app_role)
    if entry.schema == CONTROL_SCHEMA and via in (app_role, _PUBLIC):
        fix += " (goconsole init does this)"
    return Finding(f"{app_role} holds {what} (via {via}), beyond the interface", fix)


def _revoke_fix(privilege: str, target: str, via: str, app_role: str) -> str:
    grantee = _PUBLIC if via == _PUBLIC else quote_ident(via)
    if via not in (app_role, _PUBLIC):
        return f"REVOKE {privilege} ON {target} FROM {grantee}, or REVOKE {grantee} FROM " + (
            quote_ident(app_role)
        )
    return f"REVOKE {privilege} ON {target} FROM {grantee}"


async def _interface_findings(
    conn: asyncpg.Connection, app_role: str, console: str
) -> list[Finding]:
    row = await conn.fetchrow(
        "SELECT p.prosecdef, p.proowner = r.oid AS owned, "
        "coalesce(EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%'), "
        "false) AS pinned, has_function_privilege(r.oid, p.oid, 'EXECUTE') AS callable "
        "FROM pg_proc p, pg_roles r WHERE p.oid = to_regprocedure($1) AND r.rolname = $2",
        INTERFACE_SIGNATURE,
        app_role,
    )
    if row is None:
        return [
            Finding(f"the registry interface {INTERFACE_SIGNATURE} is missing", "goconsole init")
        ]
    found = []
    if not row["callable"]:
        found.append(
            Finding(
                f"{app_role} cannot EXECUTE {INTERFACE_SIGNATURE}: it cannot resolve tenants",
                "goconsole init",
            )
        )
    if row["owned"]:
        found.append(
            Finding(
                f"{app_role} owns {INTERFACE_SIGNATURE} and could redefine it",
                f"ALTER FUNCTION {INTERFACE_SIGNATURE} OWNER TO {console}",
            )
        )
    if not row["prosecdef"] or not row["pinned"]:
        found.append(
            Finding(
                f"{INTERFACE_SIGNATURE} is not SECURITY DEFINER with a fixed search_path",
                "goconsole migrate all (recreates the control schema's head), then init",
            )
        )
    return found


async def _default_acl_findings(
    conn: asyncpg.Connection, app_role: str, grantees: list[int], names: dict[int, str]
) -> list[Finding]:
    rows = await conn.fetch(_DEFAULT_ACLS, CONTROL_SCHEMA, grantees)
    found = []
    for row in rows:
        where = "anywhere" if row["global"] else f"in schema {CONTROL_SCHEMA}"
        objects = _DEFAULT_ACL_OBJECTS[row["objtype"]].lower()
        found.append(
            Finding(
                f"default privileges give {names[row['grantee']]} {row['privilege']} on {objects} "
                f"{row['owner']} creates {where}",
                _default_acl_revoke(row, names[row["grantee"]]),
            )
        )
    return found


async def _tenant_findings(
    conn: asyncpg.Connection, app_role: str, app: int, console: str
) -> list[Finding]:
    quoted = quote_ident(app_role)
    schemas = await conn.fetch(
        "SELECT n.oid, n.nspname, n.nspowner = $1 AS owned, "
        "has_schema_privilege($1, n.oid, 'CREATE') AS can_create "
        "FROM pg_namespace n JOIN public.tenants t ON t.schema_name = n.nspname ORDER BY 2",
        app,
    )
    found = []
    for s in schemas:
        schema = quote_ident(s["nspname"])
        if s["owned"]:
            found.append(
                Finding(
                    f"{app_role} owns tenant schema {s['nspname']}",
                    f"ALTER SCHEMA {schema} OWNER TO {console}",
                )
            )
        elif s["can_create"]:
            found.append(
                Finding(
                    f"{app_role} can CREATE in tenant schema {s['nspname']}",
                    f"REVOKE CREATE ON SCHEMA {schema} FROM {quoted}",
                )
            )
    tables = await conn.fetch(
        "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "c.relowner = $1 AS owned "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.oid = ANY($2::oid[]) AND c.relkind IN ('r', 'p') AND c.relname <> $3 "
        "AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity OR c.relowner = $1) "
        "ORDER BY 1, 2",
        app,
        [s["oid"] for s in schemas],
        VERSION_TABLE,
    )
    for t in tables:
        table = qualified(t["nspname"], t["relname"])
        label = f"{t['nspname']}.{t['relname']}"
        if t["owned"]:
            found.append(
                Finding(
                    f"{app_role} owns tenant table {label} and can switch its RLS off",
                    f"ALTER TABLE {table} OWNER TO {console}",
                )
            )
        if not t["relrowsecurity"]:
            found.append(
                Finding(
                    f"tenant table {label} does not enable row-level security",
                    f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
                )
            )
        if not t["relforcerowsecurity"]:
            found.append(
                Finding(
                    f"tenant table {label} does not force row-level security",
                    f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
                )
            )
    return found
