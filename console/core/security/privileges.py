"""What the application role may do outside its tenant schemas, and keeping it that way.

The documented interface (README "Security model"): CONNECT and TEMPORARY on the database,
USAGE on schema ``public`` and EXECUTE on ``public.resolve_tenant(text)`` (a SECURITY DEFINER
function of the control tree). Nothing else in the control schema. :func:`check_privileges`
lists every privilege the role holds outside its tenant schemas and flags the rest;
:func:`~console.core.security.tighten.tighten_control_schema` (run by ``goconsole init``)
revokes what an older version, or anyone, granted beyond the interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from console.core.errors import InvalidState
from console.core.hints import RebuildInterface, RunInit
from console.core.identifiers import qualified, quote_ident
from console.core.migrations.tree import VERSION_TABLE
from console.core.security.acl import (
    CONTROL_SCHEMA,
    DEFAULT_ACL_OBJECTS,
    DEFAULT_ACLS,
    EXPECTED,
    EXPECTED_ON_DATABASE,
    INTERFACE_SIGNATURE,
    PUBLIC,
    SYSTEM_SCHEMAS,
    AclEntry,
    acl_entries,
    default_acl_revoke,
    role_names,
    role_row,
)
from console.core.tenants.registry import registry_exists


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
    """Something the application role can do that it should not (or an interface flaw):
    ``fix`` is the SQL that fixes it, ``hint`` the console operation that does (either or
    both)."""

    problem: str
    fix: str = ""
    hint: RunInit | RebuildInterface | None = None


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

    def as_json(self, fix: Callable[[Finding], str]) -> dict[str, Any]:
        """JSON-ready form; ``fix`` words a finding's fix (its SQL and hint) for the reader."""
        return {
            "role": self.role,
            "database": self.database,
            "clean": self.clean,
            "privileges": [asdict(p) for p in self.privileges],
            "findings": [{"problem": f.problem, "fix": fix(f)} for f in self.findings],
        }


async def check_privileges(conn: asyncpg.Connection, app_role: str) -> PrivilegeReport:
    """Every privilege ``app_role`` holds outside its tenant schemas (directly, through PUBLIC,
    through roles it inherits from, or as owner), and findings: anything beyond the documented
    interface, a superuser or BYPASSRLS role, role memberships, a tenant table without enabled
    and forced RLS, a tenant schema or table it owns, CREATE on a tenant schema, default
    privileges giving it objects created later, and a missing or unsafe interface."""
    if not await registry_exists(conn):
        raise InvalidState("the control schema is missing", hint=RunInit())
    database = await conn.fetchval("SELECT current_database()")
    role = await role_row(conn, app_role)
    if role is None:
        return PrivilegeReport(
            app_role,
            database,
            [],
            [Finding(f"application role {app_role} does not exist", hint=RunInit())],
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
    names = await role_names(conn, grantees)
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
            f"SELECT n.oid FROM pg_namespace n WHERE n.nspname NOT IN {SYSTEM_SCHEMAS} "
            "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "
            "AND n.nspname NOT IN (SELECT schema_name FROM public.tenants) ORDER BY n.nspname"
        )
    ]
    entries = await acl_entries(conn, namespaces, grantees)
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


def _object_finding(entry: AclEntry, app_role: str, via: str, console: str) -> Finding:
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
    tightened = entry.schema == CONTROL_SCHEMA and via in (app_role, PUBLIC)
    return Finding(
        f"{app_role} holds {what} (via {via}), beyond the interface",
        fix,
        RunInit() if tightened else None,
    )


def _revoke_fix(privilege: str, target: str, via: str, app_role: str) -> str:
    grantee = PUBLIC if via == PUBLIC else quote_ident(via)
    if via not in (app_role, PUBLIC):
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
        return [Finding(f"the registry interface {INTERFACE_SIGNATURE} is missing", hint=RunInit())]
    found = []
    if not row["callable"]:
        found.append(
            Finding(
                f"{app_role} cannot EXECUTE {INTERFACE_SIGNATURE}: it cannot resolve tenants",
                hint=RunInit(),
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
                hint=RebuildInterface(),
            )
        )
    return found


async def _default_acl_findings(
    conn: asyncpg.Connection, app_role: str, grantees: list[int], names: dict[int, str]
) -> list[Finding]:
    rows = await conn.fetch(DEFAULT_ACLS, CONTROL_SCHEMA, grantees)
    found = []
    for row in rows:
        where = "anywhere" if row["global"] else f"in schema {CONTROL_SCHEMA}"
        objects = DEFAULT_ACL_OBJECTS[row["objtype"]].lower()
        found.append(
            Finding(
                f"default privileges give {names[row['grantee']]} {row['privilege']} on {objects} "
                f"{row['owner']} creates {where}",
                default_acl_revoke(row, names[row["grantee"]]),
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
