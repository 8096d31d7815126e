"""What the application role can do outside its tenant schemas: nothing on the control tables,
one tenant at a time through public.resolve_tenant; check-privileges; init tightening an
installation made by an older version. Real PostgreSQL only."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from helpers import APP_ROLE
from test_cli import run_cli

from console.config import ClusterSettings, SecuritySettings, Settings
from console.core.migrations.tree import head_revision
from console.core.security.acl import INTERFACE_SIGNATURE
from console.core.service import ConsoleService

CONTROL_TABLES = (
    "tenants",
    "tenant_audit_log",
    "backups",
    "job_runs",
    "migration_runs",
    "migration_run_tenants",
    "maintenance_windows",
    "registry_public_fields",
    "schema_version",
)
# What init granted before the registry interface existed (goconsole <= session 3).
OLD_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role};"
    "GRANT SELECT ON public.tenants TO {role};"
    "GRANT SELECT, INSERT ON public.tenant_audit_log TO {role};"
    "GRANT CREATE ON SCHEMA public TO PUBLIC"
)


@pytest.fixture
async def own_role(su: asyncpg.Connection) -> AsyncIterator[str]:
    """A throwaway application role (roles are cluster-wide: planting BYPASSRLS on the shared
    one would leak into other tests); dropped with its privileges at the end."""
    role = f"app_{uuid.uuid4().hex[:12]}"
    try:
        yield role
    finally:
        if await su.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await su.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


def with_role(settings: Settings, role: str) -> Settings:
    return dataclasses.replace(settings, clusters={"primary": ClusterSettings(app_role=role)})


# -- as the application role ---------------------------------------------------------------------


async def test_app_role_reads_and_writes_no_control_table(
    service: ConsoleService, app_conn
) -> None:
    await service.provision("alpha")
    conn = await app_conn()
    for table in CONTROL_TABLES:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch(f"SELECT * FROM public.{table} LIMIT 1")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(
            "INSERT INTO public.tenant_audit_log (action_type, actor, actor_host, actor_address) "
            "VALUES ('forged', 'eve', 'h', 'a')"
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CREATE TABLE public.planted (id int)")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("SELECT public.goconsole_touch_updated_at()")


async def test_app_role_resolves_one_tenant_and_cannot_list_them(
    make_service, settings: Settings, su: asyncpg.Connection, app_conn
) -> None:
    svc = await make_service(
        settings=dataclasses.replace(
            settings, security=SecuritySettings(public_config_fields=("locale",))
        )
    )
    await svc.init()
    alpha = await svc.provision("alpha")
    await svc.provision("bravo")
    await su.execute(
        'UPDATE public.tenants SET config = \'{"locale": "de", "api_secret": "s3"}\' '
        "WHERE key = 'alpha'"
    )
    conn = await app_conn()
    rows = await conn.fetch("SELECT * FROM public.resolve_tenant($1)", "alpha")
    assert [dict(r) for r in rows] == [
        {
            "tenant_id": alpha.id,
            "schema_name": "tenant_alpha",
            "status": "ACTIVE",
            "public_config": '{"locale": "de"}',
        }
    ]
    # nothing lists tenants: no pattern, no NULL trick, no table access
    for probe in ("%", "alpha' OR true --", "", None):
        assert await conn.fetch("SELECT * FROM public.resolve_tenant($1)", probe) == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.fetch("SELECT * FROM public.tenants")
    # the interface: SECURITY DEFINER, fixed search_path, owned by the console, not PUBLIC's
    fn = await su.fetchrow(
        "SELECT prosecdef, proconfig, pg_get_userbyid(proowner) AS owner, "
        "has_function_privilege('public', oid, 'EXECUTE') AS public_may "
        "FROM pg_proc WHERE oid = to_regprocedure($1)",
        INTERFACE_SIGNATURE,
    )
    assert fn is not None
    assert fn["prosecdef"] and fn["proconfig"] == ["search_path=pg_catalog, pg_temp"]
    assert fn["owner"] == await su.fetchval("SELECT current_user")
    assert not fn["public_may"]

    # no public field configured: no config at all; init says what it changed
    report = await svc.init()
    assert report.privilege_changes == []
    plain = await make_service()
    report = await plain.init()
    assert report.privilege_changes == ["config field 'locale' is no longer public"]
    assert await conn.fetchval("SELECT public_config FROM public.resolve_tenant('alpha')") == "{}"


# -- check-privileges ----------------------------------------------------------------------------


async def test_check_privileges_on_a_clean_install_finds_nothing(
    service: ConsoleService,
) -> None:
    await service.provision("alpha")
    report = await service.check_privileges()
    assert report.findings == []
    assert report.clean
    held = {(p.kind, p.object, p.privilege, p.via) for p in report.privileges}
    database = report.database
    assert held == {
        ("database", database, "CONNECT", "PUBLIC"),
        ("database", database, "TEMPORARY", "PUBLIC"),
        ("schema", "public", "USAGE", APP_ROLE),
        ("schema", "public", "USAGE", "PUBLIC"),
        ("function", INTERFACE_SIGNATURE, "EXECUTE", APP_ROLE),
    }
    assert all(p.expected for p in report.privileges)


PLANTS = {
    "audit_log_select": (
        "GRANT SELECT ON public.tenant_audit_log TO {role}",
        "holds SELECT on table public.tenant_audit_log (via {role}), beyond the interface",
        "REVOKE SELECT ON TABLE public.tenant_audit_log FROM {role}",
    ),
    "no_force_rls": (
        "ALTER TABLE tenant_alpha.orders NO FORCE ROW LEVEL SECURITY",
        "tenant table tenant_alpha.orders does not force row-level security",
        "ALTER TABLE tenant_alpha.orders FORCE ROW LEVEL SECURITY",
    ),
    "bypassrls": (
        "ALTER ROLE {role} BYPASSRLS",
        "{role} has BYPASSRLS: row-level security does not apply to it",
        "ALTER ROLE {role} NOBYPASSRLS",
    ),
    "create_on_tenant_schema": (
        "GRANT CREATE ON SCHEMA tenant_alpha TO {role}",
        "{role} can CREATE in tenant schema tenant_alpha",
        "REVOKE CREATE ON SCHEMA tenant_alpha FROM {role}",
    ),
    "owns_tenant_schema": (
        "ALTER SCHEMA tenant_alpha OWNER TO {role}",
        "{role} owns tenant schema tenant_alpha",
        "ALTER SCHEMA tenant_alpha OWNER TO postgres",
    ),
    "create_on_public": (
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        "{role} holds CREATE on schema public (via PUBLIC), beyond the interface",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    ),
    "owns_database": (
        "ALTER DATABASE {db} OWNER TO {role}",
        "{role} owns database {db}",
        "ALTER DATABASE {db} OWNER TO postgres",
    ),
    "member_of_reader": (
        "GRANT pg_read_all_data TO {role}",
        "{role} is a member of pg_read_all_data (it can use that role's privileges)",
        "REVOKE pg_read_all_data FROM {role}",
    ),
}


@pytest.mark.parametrize("plant", list(PLANTS))
async def test_check_privileges_names_each_planted_problem(
    plant: str, make_service, settings: Settings, su: asyncpg.Connection, own_role: str
) -> None:
    svc = await make_service(settings=with_role(settings, own_role))
    await svc.init()
    await svc.provision("alpha")
    assert (await svc.check_privileges()).findings == []
    db = await su.fetchval("SELECT current_database()")
    sql, problem, fix = (text.format(role=own_role, db=db) for text in PLANTS[plant])
    await su.execute(sql)

    report = await svc.check_privileges()
    found = [(f.problem, f.fix) for f in report.findings]
    assert any(problem in p and fix.replace('"', "") in f.replace('"', "") for p, f in found), found
    # the fix it names cures it
    await su.execute(fix)
    assert (await svc.check_privileges()).findings == []


async def test_check_privileges_cli_exit_codes(
    database_dsn: str, tmp_path: Path, su: asyncpg.Connection
) -> None:
    def cli(*args: str):
        return run_cli(*args, dsn=database_dsn, backup_dir=tmp_path / "backups")

    first = await asyncio.to_thread(cli, "init")
    assert first.returncode == 0, first.stderr
    again = await asyncio.to_thread(cli, "init")
    assert again.returncode == 0, again.stderr
    assert f"privileges of {APP_ROLE}: nothing to change" in again.stdout

    clean = await asyncio.to_thread(cli, "check-privileges")
    assert clean.returncode == 0, clean.stderr
    assert re.search(
        rf"^function\s+public\.resolve_tenant\(text\)\s+EXECUTE\s+{APP_ROLE}\s+yes$",
        clean.stdout,
        re.MULTILINE,
    ), clean.stdout
    assert "no findings" in clean.stdout

    await su.execute(f"GRANT SELECT ON public.tenant_audit_log TO {APP_ROLE}")
    found = await asyncio.to_thread(cli, "check-privileges")
    assert found.returncode == 1, found.stderr
    assert (
        f"FINDING: {APP_ROLE} holds SELECT on table public.tenant_audit_log (via {APP_ROLE}), "
        "beyond the interface; fix: REVOKE SELECT ON TABLE"
    ) in found.stdout
    assert "1 finding(s)" in found.stderr
    as_json = await asyncio.to_thread(cli, "check-privileges", "--json")
    assert as_json.returncode == 1
    payload = json.loads(as_json.stdout)
    assert payload["clean"] is False
    assert [f["problem"] for f in payload["findings"]] == [
        f"{APP_ROLE} holds SELECT on table public.tenant_audit_log (via {APP_ROLE}), "
        "beyond the interface"
    ]
    (finding,) = payload["findings"]
    assert list(finding) == ["problem", "fix"]
    assert finding["fix"].startswith("REVOKE SELECT ON TABLE")
    assert finding["fix"].endswith(" (goconsole init does this)")

    bad = await asyncio.to_thread(cli, "check-privileges", "--bogus")
    assert bad.returncode == 2
    assert "unrecognized arguments: --bogus" in bad.stderr


# -- the upgrade path ----------------------------------------------------------------------------


async def test_init_tightens_an_installation_made_by_an_older_version(
    make_service, settings: Settings, su: asyncpg.Connection, own_role: str
) -> None:
    svc = await make_service(settings=with_role(settings, own_role))
    # what the previous version left: control schema at 0001, its grants, CREATE for PUBLIC
    await asyncio.to_thread(svc.alembic.upgrade_control, "0001_control_base")
    await su.execute(f'CREATE ROLE "{own_role}" LOGIN')
    await su.execute(OLD_GRANTS.format(role=f'"{own_role}"'))
    assert await su.fetchval(
        "SELECT has_table_privilege($1, 'public.tenant_audit_log', 'SELECT')", own_role
    )

    report = await svc.init()

    assert report.control_revision == head_revision("control")
    assert set(report.privilege_changes) == {
        f"revoked SELECT on table public.tenant_audit_log from {own_role}",
        f"revoked INSERT on table public.tenant_audit_log from {own_role}",
        f"revoked SELECT on table public.tenants from {own_role}",
        "revoked CREATE on schema public from PUBLIC",
        "revoked EXECUTE on function public.goconsole_refuse_change() from PUBLIC",
        "revoked EXECUTE on function public.goconsole_touch_updated_at() from PUBLIC",
        f"granted EXECUTE on function {INTERFACE_SIGNATURE} to {own_role}",
    }
    for table in CONTROL_TABLES:
        assert not await su.fetchval(
            "SELECT has_table_privilege($1, $2, 'SELECT, INSERT, UPDATE, DELETE')",
            own_role,
            f"public.{table}",
        ), table
    assert not await su.fetchval("SELECT has_schema_privilege('public', 'public', 'CREATE')")
    await svc.provision("alpha")
    assert (await svc.check_privileges()).findings == []
    assert (await svc.init()).privilege_changes == []


async def test_init_removes_default_privileges_on_the_control_schema(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    await su.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {APP_ROLE}"
    )
    console = await su.fetchval("SELECT current_user")
    findings = (await service.check_privileges()).findings
    assert [f.fix for f in findings] == [
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{console}" IN SCHEMA "public" REVOKE ALL ON TABLES '
        f'FROM "{APP_ROLE}"'
    ]
    report = await service.init()
    assert report.privilege_changes == [f"removed default privileges: {findings[0].fix}"]
    await su.execute("CREATE TABLE public.added_later (id int)")
    assert not await su.fetchval(
        "SELECT has_table_privilege($1, 'public.added_later', 'SELECT')", APP_ROLE
    )
    assert (await service.check_privileges()).findings == []


# -- a console that is not a superuser -----------------------------------------------------------


async def test_a_non_superuser_console_initialises_provisions_and_verifies(
    database_dsn: str, settings: Settings, su: asyncpg.Connection, own_role: str
) -> None:
    """What the README says an operator role needs is enough: CREATEROLE (the application role
    does not exist yet) and ownership of the database (CREATE on it and, from PostgreSQL 15,
    on schema public). Verification switches to the application role and back."""
    console = f"console_{uuid.uuid4().hex[:12]}"
    database = database_dsn.rsplit("/", 1)[1]
    await su.execute(f'CREATE ROLE "{console}" LOGIN CREATEROLE')
    await su.execute(f'ALTER DATABASE "{database}" OWNER TO "{console}"')
    dsn = database_dsn.replace("postgresql://postgres@", f"postgresql://{console}@")
    assert dsn != database_dsn
    try:
        async with ConsoleService(with_role(settings, own_role), dsn=dsn) as svc:
            report = await svc.init()
            assert f"granted EXECUTE on function {INTERFACE_SIGNATURE} to {own_role}" in (
                report.privilege_changes
            )
            await svc.provision("alpha")
            bulk = await svc.provision_many(["bravo", "charlie"])
            assert (bulk.done, bulk.failed) == (2, 0)
            assert (await svc.check_privileges()).findings == []
        # every verification passed and was audited by the console's role
        assert (
            await su.fetchval(
                "SELECT count(*) FROM public.tenant_audit_log "
                "WHERE action_type = 'provision.verify'"
            )
            == 3
        )
        owner = await su.fetchval(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = to_regprocedure($1)",
            INTERFACE_SIGNATURE,
        )
        assert owner == console
    finally:
        await su.execute(
            f'ALTER DATABASE "{database}" OWNER TO CURRENT_USER; '
            f'REASSIGN OWNED BY "{console}" TO CURRENT_USER; DROP OWNED BY "{console}"; '
            f'DROP ROLE "{console}"'
        )
