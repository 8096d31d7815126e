"""init, and what provision builds: tables, indexes, triggers, forced RLS, audit trail, the
clone and alembic paths, and tenant isolation for the application role. Real PostgreSQL only."""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import uuid
from typing import Any

import asyncpg
import pytest
from helpers import APP_ROLE

from console.config import ClusterSettings
from console.core.bootstrap import InitReport
from console.core.errors import InvalidState
from console.core.identifiers import TEMPLATE_SCHEMA
from console.core.migrations.tree import head_revision
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.schema import catalog_fingerprint

DATA_TABLES = ("categories", "products", "customers", "orders", "order_items")
TENANT_TABLES = (*DATA_TABLES, "deletion_log")
PROVISION_STEPS = [
    "provision.register",
    "provision.schema",
    "provision.init_data",
    "provision.verify",
    "provision.activate",
]


async def audit_rows(su: asyncpg.Connection, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
    return await su.fetch(
        "SELECT action_type, actor, actor_host, actor_address, details "
        "FROM public.tenant_audit_log WHERE tenant_id = $1 ORDER BY action_timestamp, id",
        tenant_id,
    )


async def schema_step(su: asyncpg.Connection, tenant: Tenant) -> dict[str, Any]:
    """Details of the (last) provision.schema audit row."""
    rows = [r for r in await audit_rows(su, tenant.id) if r["action_type"] == "provision.schema"]
    assert rows, f"no provision.schema audit row for {tenant.key}"
    return dict(rows[-1]["details"])


async def fingerprint(service: ConsoleService, tenant: Tenant) -> dict[str, list[Any]]:
    async with service.db.acquire() as conn:
        return await catalog_fingerprint(conn, tenant.schema_name, tenant.id)


def expected_address() -> str:
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    return ssh[0] if ssh else "local"


# -- init ----------------------------------------------------------------------------------------


async def test_init_twice_is_idempotent(make_service, su: asyncpg.Connection) -> None:
    svc = await make_service()
    first = await svc.init()
    assert first.app_role in {"created", "verified"}  # the role is cluster-wide
    tenant = await svc.provision("acme")
    second = await svc.init()

    assert second == InitReport(
        control_revision=head_revision("control"),
        app_role="verified",
        privilege_changes=[],
        template_revision=head_revision("tenant"),
    )
    assert first.control_revision == second.control_revision
    assert await su.fetch("SELECT version_num FROM public.schema_version") == [
        (head_revision("control"),)
    ]
    assert await su.fetchval(
        f"SELECT version_num FROM {TEMPLATE_SCHEMA}.schema_version"
    ) == head_revision("tenant")
    role = await su.fetchrow(
        "SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", APP_ROLE
    )
    assert dict(role) == {"rolcanlogin": True, "rolbypassrls": False, "rolsuper": False}
    # the second run kept the registry and its tenant
    assert await su.fetch("SELECT key, status::text FROM public.tenants") == [("acme", "ACTIVE")]
    assert [t.id for t in await svc.tenants()] == [tenant.id]
    steps = await su.fetch(
        "SELECT action_type, count(*) FROM public.tenant_audit_log WHERE tenant_id IS NULL "
        "GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in steps] == [
        ("init.app_role", 2),
        ("init.control_schema", 2),
        ("init.privileges", 2),
        ("init.template", 2),
    ]


async def test_init_rebuilds_a_dropped_template(service: ConsoleService, su) -> None:
    await su.execute(f"DROP SCHEMA {TEMPLATE_SCHEMA} CASCADE")
    await service.init()
    assert await su.fetchval(
        f"SELECT version_num FROM {TEMPLATE_SCHEMA}.schema_version"
    ) == head_revision("tenant")
    tenant = await service.provision("acme")
    assert (await schema_step(su, tenant))["method"] == "clone"


async def test_init_refuses_app_role_with_bypassrls(
    make_service, settings, su: asyncpg.Connection
) -> None:
    role = f"bypass_{uuid.uuid4().hex[:12]}"
    await su.execute(f'CREATE ROLE "{role}" LOGIN BYPASSRLS')
    try:
        custom = dataclasses.replace(settings, clusters={"primary": ClusterSettings(app_role=role)})
        svc = await make_service(settings=custom)
        with pytest.raises(InvalidState) as err:
            await svc.init()
        message = str(err.value)
        assert f"application role '{role}' has BYPASSRLS" in message
        assert "NOBYPASSRLS" in message
        # nothing was granted to the refused role, and it was not altered
        assert await su.fetchval("SELECT rolbypassrls FROM pg_roles WHERE rolname = $1", role)
        assert not await su.fetchval(
            "SELECT has_table_privilege($1, 'public.tenants', 'SELECT')", role
        )
    finally:
        await su.execute(f'DROP ROLE "{role}"')


async def test_init_refuses_superuser_app_role(make_service, settings, su) -> None:
    role = f"super_{uuid.uuid4().hex[:12]}"
    await su.execute(f'CREATE ROLE "{role}" NOLOGIN SUPERUSER')
    try:
        custom = dataclasses.replace(settings, clusters={"primary": ClusterSettings(app_role=role)})
        svc = await make_service(settings=custom)
        with pytest.raises(InvalidState, match=r"cannot LOGIN and is a superuser"):
            await svc.init()
    finally:
        await su.execute(f'DROP ROLE "{role}"')


# -- what provision builds -----------------------------------------------------------------------


async def test_provision_builds_every_table_index_trigger_and_forced_policy(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    tenant = await service.provision("acme", "Acme Corp")
    schema = tenant.schema_name
    assert (tenant.key, schema, tenant.display_name, tenant.status) == (
        "acme",
        "tenant_acme",
        "Acme Corp",
        TenantStatus.ACTIVE,
    )
    assert await su.fetchval("SELECT status::text FROM public.tenants WHERE key = 'acme'") == (
        "ACTIVE"
    )

    tables = await su.fetch(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
        "pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
        "WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY 1",
        schema,
    )
    assert {r["relname"] for r in tables} == {*TENANT_TABLES, "schema_version"}
    for row in tables:
        if row["relname"] in TENANT_TABLES:
            assert row["relrowsecurity"], f"RLS not enabled on {row['relname']}"
            assert row["relforcerowsecurity"], f"RLS not forced on {row['relname']}"
            assert row["owner"] != APP_ROLE

    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await su.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", schema
        )
    }
    assert indexes["idx_customers_email"].endswith(f"ON {schema}.customers USING btree (email)")
    assert indexes["idx_products_category"].endswith(
        f"ON {schema}.products USING btree (category_id)"
    )
    assert indexes["idx_active_customers"].endswith(
        f"ON {schema}.customers USING btree (id) WHERE (status = 'ACTIVE'::text)"
    )

    triggers = {
        (r["relname"], r["tgname"])
        for r in await su.fetch(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal "
            "AND t.tgenabled = 'O'",
            schema,
        )
    }
    for table in DATA_TABLES:
        assert (table, "set_updated_at") in triggers
        assert (table, "log_deletion") in triggers

    policies = await su.fetch(
        "SELECT tablename, policyname, cmd, permissive, qual, with_check FROM pg_policies "
        "WHERE schemaname = $1 ORDER BY 1",
        schema,
    )
    assert sorted(r["tablename"] for r in policies) == sorted(TENANT_TABLES)
    for policy in policies:
        assert policy["policyname"] == "tenant_isolation"
        assert (policy["cmd"], policy["permissive"]) == ("ALL", "PERMISSIVE")
        for expr in (policy["qual"], policy["with_check"]):
            assert "current_setting('app.current_tenant_id'::text, true)" in expr
            assert f"'{tenant.id}'::text" in expr

    assert await su.fetchval(f"SELECT version_num FROM {schema}.schema_version") == head_revision(
        "tenant"
    )
    assert await su.fetchval(f"SELECT name FROM {schema}.categories") == "Uncategorized"


async def test_updated_at_and_deletion_log_triggers_fire_for_the_app_role(
    service: ConsoleService, app_conn
) -> None:
    tenant = await service.provision("acme")
    s = tenant.schema_name
    conn = await app_conn()
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, false)", str(tenant.id))
    old = "2000-01-01 00:00:00+00"
    ids = {}
    async with conn.transaction():
        ids["categories"] = await conn.fetchval(
            f"INSERT INTO {s}.categories (name, created_at, updated_at) "
            f"VALUES ('Tools', '{old}', '{old}') RETURNING id"
        )
        ids["products"] = await conn.fetchval(
            f"INSERT INTO {s}.products (sku, name, price, category_id, created_at, updated_at) "
            f"VALUES ('T-1', 'Hammer', 9.5, $1, '{old}', '{old}') RETURNING id",
            ids["categories"],
        )
        ids["customers"] = await conn.fetchval(
            f"INSERT INTO {s}.customers (email, full_name, created_at, updated_at) "
            f"VALUES ('ann@example.com', 'Ann', '{old}', '{old}') RETURNING id"
        )
        ids["orders"] = await conn.fetchval(
            f"INSERT INTO {s}.orders (customer_id, total, created_at, updated_at) "
            f"VALUES ($1, 9.5, '{old}', '{old}') RETURNING id",
            ids["customers"],
        )
        ids["order_items"] = await conn.fetchval(
            f"INSERT INTO {s}.order_items (order_id, product_id, quantity, unit_price, "
            f"created_at, updated_at) VALUES ($1, $2, 1, 9.5, '{old}', '{old}') RETURNING id",
            ids["orders"],
            ids["products"],
        )
    for table, row_id in ids.items():
        assert await conn.fetchval(
            f"SELECT updated_at = '{old}' FROM {s}.{table} WHERE id = $1", row_id
        )
        # an UPDATE that does not touch updated_at still moves it
        await conn.execute(f"UPDATE {s}.{table} SET created_at = created_at WHERE id = $1", row_id)
        moved = await conn.fetchrow(
            f"SELECT updated_at > '{old}'::timestamptz + interval '1 year' AS moved, "
            f"created_at = '{old}' AS created_kept FROM {s}.{table} WHERE id = $1",
            row_id,
        )
        assert moved["moved"], f"updated_at trigger did not fire on {table}"
        assert moved["created_kept"]

    for table in ("order_items", "orders", "products", "customers", "categories"):
        assert await conn.execute(f"DELETE FROM {s}.{table} WHERE id = $1", ids[table]) == (
            "DELETE 1"
        )
    logged = await conn.fetch(f"SELECT table_name, row_id FROM {s}.deletion_log")
    assert sorted((r["table_name"], r["row_id"]) for r in logged) == sorted(
        (table, row_id) for table, row_id in ids.items()
    )
    # the deletion log is append-only for the application role
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(f"DELETE FROM {s}.deletion_log")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(f"UPDATE {s}.deletion_log SET table_name = 'x'")


async def test_provision_audits_one_row_per_step_with_the_actor(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    tenant = await service.provision("acme")
    rows = await audit_rows(su, tenant.id)
    assert [r["action_type"] for r in rows] == PROVISION_STEPS
    for row in rows:
        assert row["actor"] == getpass.getuser()
        assert row["actor_host"] == socket.gethostname()
        assert row["actor_address"] == expected_address()
        assert row["details"]["duration_ms"] >= 0
    details = {r["action_type"]: r["details"] for r in rows}
    assert details["provision.register"]["schema"] == "tenant_acme"
    assert details["provision.schema"]["method"] == "clone"
    assert details["provision.schema"]["revision"] == head_revision("tenant")
    assert details["provision.init_data"]["tables_granted"] == len(TENANT_TABLES)
    assert details["provision.verify"]["foreign_write"] == "refused"
    # the reading API returns the same trail, newest first
    entries = await service.audit("acme")
    assert [e.action_type for e in entries] == PROVISION_STEPS[::-1]


async def test_audit_records_the_ssh_client_address(
    make_service, su: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.7 50522 192.0.2.10 22")
    svc = await make_service()
    await svc.init()
    tenant = await svc.provision("acme")
    assert {r["actor_address"] for r in await audit_rows(su, tenant.id)} == {"203.0.113.7"}


# -- clone path vs alembic path ------------------------------------------------------------------


async def test_clone_and_alembic_paths_build_identical_catalogs(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    cloned = await service.provision("cloned")
    migrated = await service.provision("migrated", use_template=False)
    assert (await schema_step(su, cloned))["method"] == "clone"
    assert (await schema_step(su, migrated))["method"] == "alembic"

    fp_cloned = await fingerprint(service, cloned)
    fp_migrated = await fingerprint(service, migrated)
    assert fp_cloned == fp_migrated
    # the comparison covers what matters (not vacuously equal) ...
    assert len(fp_cloned["policies"]) == len(TENANT_TABLES)
    assert len(fp_cloned["triggers"]) == 3 * len(DATA_TABLES)  # updated_at, deletion, backup xid
    assert {row[0] for row in fp_cloned["indexes"]} >= {
        "idx_customers_email",
        "idx_products_category",
        "idx_active_customers",
    }
    assert fp_cloned["revision"] == [True, head_revision("tenant")]
    # ... and notices a difference
    await su.execute(f"DROP INDEX {migrated.schema_name}.idx_active_customers")
    assert await fingerprint(service, migrated) != fp_cloned


@pytest.mark.parametrize("damage", ["dropped", "stale"])
async def test_provision_falls_back_to_alembic_without_a_usable_template(
    service: ConsoleService, su: asyncpg.Connection, damage: str
) -> None:
    reference = await service.provision("reference")  # clone path; caches the template DDL
    assert (await schema_step(su, reference))["method"] == "clone"
    if damage == "dropped":
        await su.execute(f"DROP SCHEMA {TEMPLATE_SCHEMA} CASCADE")
    else:
        await su.execute(f"UPDATE {TEMPLATE_SCHEMA}.schema_version SET version_num = '0000_old'")

    tenant = await service.provision("fallback")
    assert tenant.status is TenantStatus.ACTIVE
    details = await schema_step(su, tenant)
    assert details["method"] == "alembic"
    assert details["revision"] == head_revision("tenant")
    expected_reason = "is missing" if damage == "dropped" else "is at 0000_old"
    assert expected_reason in details["reason"]
    assert await fingerprint(service, tenant) == await fingerprint(service, reference)

    # init repairs the template and the fast path is back
    await service.init()
    again = await service.provision("again")
    assert (await schema_step(su, again))["method"] == "clone"
    assert await fingerprint(service, again) == await fingerprint(service, reference)


# -- isolation for the application role ----------------------------------------------------------


async def test_app_role_reads_and_writes_only_its_own_tenant(
    service: ConsoleService, su: asyncpg.Connection, app_conn
) -> None:
    alpha = await service.provision("alpha")
    bravo = await service.provision("bravo")
    set_tenant = "SELECT set_config('app.current_tenant_id', $1, false)"

    conn = await app_conn()
    assert await conn.fetchval("SELECT current_user") == APP_ROLE
    await conn.execute(set_tenant, str(alpha.id))
    row_id = await conn.fetchval(
        "INSERT INTO tenant_alpha.customers (email, full_name) "
        "VALUES ('ann@alpha.example', 'Ann') RETURNING id"
    )
    assert await conn.fetchval("SELECT count(*) FROM tenant_alpha.customers") == 1
    assert await conn.fetchval("SELECT id FROM tenant_alpha.customers") == row_id
    assert await conn.fetchval("SELECT count(*) FROM tenant_alpha.categories") == 1
    assert await conn.fetchval("SELECT count(*) FROM tenant_bravo.categories") == 0

    await conn.execute(set_tenant, str(bravo.id))
    assert await conn.fetchval("SELECT count(*) FROM tenant_alpha.customers") == 0
    assert await conn.fetchval("SELECT count(*) FROM tenant_alpha.categories") == 0
    assert await conn.fetchval("SELECT count(*) FROM tenant_bravo.categories") == 1
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(
            "INSERT INTO tenant_alpha.customers (email, full_name) VALUES ('eve@x', 'Eve')"
        )
    assert await conn.execute("UPDATE tenant_alpha.customers SET full_name = 'Eve'") == ("UPDATE 0")
    assert await conn.execute("DELETE FROM tenant_alpha.customers") == "DELETE 0"
    # turning row security off is refused rather than bypassing it
    await conn.execute("SET row_security = off")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.fetchval("SELECT count(*) FROM tenant_alpha.customers")

    fresh = await app_conn()  # app.current_tenant_id never set
    assert await fresh.fetchval("SELECT count(*) FROM tenant_alpha.customers") == 0
    assert await fresh.fetchval("SELECT count(*) FROM tenant_bravo.categories") == 0
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fresh.execute(
            "INSERT INTO tenant_alpha.customers (email, full_name) VALUES ('eve@x', 'Eve')"
        )
    # the app role cannot touch the registry
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fresh.execute("UPDATE public.tenants SET status = 'ACTIVE'")

    assert await su.fetch("SELECT id, full_name FROM tenant_alpha.customers") == [(row_id, "Ann")]
