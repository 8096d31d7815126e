"""Restoring one tenant to a point in time on real PostgreSQL: each point of a chain, other
tenants untouched, validation stopping before the switch, rollback, purge, an archived tenant
re-created, the plan's refusals, and the schema renamer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from test_backups import add_customers, backup

from console.core.backups.catalog import BackupKind
from console.core.backups.digest import schema_digests
from console.core.backups.recovery import (
    NAME_LIMIT,
    RECOVERY,
    REPLACED,
    is_side_schema,
    schema_prefix,
    side_schema,
)
from console.core.backups.rename import SchemaRenamer
from console.core.errors import InvalidInput, InvalidState, OperationFailed
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant, TenantStatus


async def state_of(conn: asyncpg.Connection, schema: str) -> dict[str, tuple[int, str]]:
    """Each table's rows and digest (superuser: row-level security does not hide rows)."""
    return {k: (v.rows, v.digest) for k, v in (await schema_digests(conn, schema)).items()}


async def names(conn: asyncpg.Connection, tenant: Tenant) -> list[str]:
    return [
        r[0]
        for r in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
            tenant.schema_name,
        )
    ]


async def history(service: ConsoleService, su: asyncpg.Connection) -> tuple[Tenant, list]:
    """acme: full, change, incremental, change (a deletion too), incremental, change again;
    returns the tenant and [(backup, state then)] for each point."""
    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann", "Bob")
    points = []
    full = await backup(service, "acme", BackupKind.FULL)
    points.append((full, await state_of(su, tenant.schema_name)))
    await add_customers(su, tenant, "Cid")
    await su.execute("UPDATE tenant_acme.customers SET full_name = 'Ann B' WHERE full_name = 'Ann'")
    one = await backup(service, "acme", BackupKind.INCREMENTAL)
    points.append((one, await state_of(su, tenant.schema_name)))
    await su.execute("DELETE FROM tenant_acme.customers WHERE full_name = 'Bob'")
    await add_customers(su, tenant, "Dee")
    two = await backup(service, "acme", BackupKind.INCREMENTAL)
    points.append((two, await state_of(su, tenant.schema_name)))
    await add_customers(su, tenant, "Eve")  # the bad deploy the restore undoes
    return tenant, points


async def test_restore_to_each_point_leaves_other_tenants_alone(
    service: ConsoleService, su: asyncpg.Connection, app_conn
) -> None:
    other = await service.provision("globex")
    await add_customers(su, other, "Gus")
    tenant, points = await history(service, su)
    untouched = await state_of(su, other.schema_name)
    for record, then in points:
        plan = await service.backups.restore_plan("acme", to=record.covers_until)
        assert plan.last.id == record.id and plan.distance_s == 0
        report = await service.backups.restore("acme", backup_id=str(record.id), timeout=5)
        assert await state_of(su, tenant.schema_name) == then
        assert report.status_after == "ACTIVE" and report.replaced_schema is not None
        assert (
            report.validation is not None
            and report.validation.rows["customers"] == (then["customers"][0])
        )
        assert await state_of(su, other.schema_name) == untouched
    # the application role reaches the restored schema and nothing else of it
    conn = await app_conn()
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, false)", str(tenant.id))
    assert await conn.fetchval("SELECT count(*) FROM tenant_acme.customers") == 3
    replaced = await service.backups.replaced("acme")
    assert len(replaced) == 3
    for kept in replaced:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval(f'SELECT count(*) FROM "{kept.schema}".customers')
    row = await su.fetchrow("SELECT status, status_before_restore FROM tenants WHERE key = 'acme'")
    assert (row["status"], row["status_before_restore"]) == ("ACTIVE", None)
    actions = [
        r[0]
        for r in await su.fetch(
            "SELECT action_type FROM tenant_audit_log WHERE tenant_id = $1 "
            "AND action_type LIKE 'restore.%' ORDER BY action_timestamp",
            tenant.id,
        )
    ]
    assert actions[:6] == [
        "restore.plan",
        "restore.recover",
        "restore.apply",
        "restore.validate",
        "restore.switch",
        "restore.finish",
    ]
    # the next backup is a full: the live rows no longer follow the newest chain
    after = await service.backups.run(["acme"])
    assert after.outcomes[0].record is not None
    assert after.outcomes[0].record.kind is BackupKind.FULL
    assert "restore" in (after.outcomes[0].why_full or "")


async def test_a_digest_mismatch_stops_before_the_switch(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    tenant, points = await history(service, su)
    record = points[1][0]
    await su.execute(
        "UPDATE backups SET manifest = jsonb_set(manifest, "
        "'{tables,customers,changed_digest}', '\"12345\"') WHERE id = $1",
        record.id,
    )
    live = await state_of(su, tenant.schema_name)
    with pytest.raises(OperationFailed, match="digest-mismatch"):
        await service.backups.restore("acme", backup_id=str(record.id), timeout=5)
    assert await state_of(su, tenant.schema_name) == live
    left = await names(su, tenant)
    assert len(left) == 2 and is_side_schema("acme", RECOVERY, left[1])
    assert (await service.tenant("acme")).status is TenantStatus.ACTIVE  # type: ignore[union-attr]
    assert await service.backups.discard_recovery("acme") == [left[1]]
    assert await names(su, tenant) == [tenant.schema_name]


async def test_rollback_and_purge(service: ConsoleService, su: asyncpg.Connection) -> None:
    tenant, points = await history(service, su)
    latest = await state_of(su, tenant.schema_name)
    await service.backups.restore("acme", backup_id=str(points[0][0].id), timeout=5)
    assert await state_of(su, tenant.schema_name) == points[0][1]
    report = await service.backups.rollback("acme", timeout=5)
    assert report.action == "rollback"
    assert await state_of(su, tenant.schema_name) == latest
    kept = await service.backups.replaced("acme")
    assert len(kept) == 1  # the restored schema, switched out by the rollback
    now = datetime.now(UTC)
    dry = await service.backups.purge_replaced(now=now, dry_run=True)
    assert dry.dropped == [] and [k.schema for k in dry.kept] == [kept[0].schema]
    later = now + timedelta(days=8)
    assert [
        k.schema for k in (await service.backups.purge_replaced(now=later, dry_run=True)).dropped
    ] == [kept[0].schema]
    purged = await service.backups.purge_replaced(now=later)
    assert [k.schema for k in purged.dropped] == [kept[0].schema]
    assert await names(su, tenant) == [tenant.schema_name]
    assert (
        await su.fetchval(
            "SELECT count(*) FROM tenant_audit_log WHERE action_type = 'purge_replaced.drop'"
        )
        == 1
    )
    with pytest.raises(Exception, match="no replaced schema"):
        await service.backups.rollback("acme", timeout=5)


async def test_an_archived_tenant_is_recreated_inactive(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann", "Bob")
    before = await state_of(su, tenant.schema_name)
    offboard = await service.offboard("acme", timeout=5)
    assert offboard.backup is not None
    plan = await service.backups.restore_plan("acme", backup_id=str(offboard.backup.id))
    assert plan.recreate
    report = await service.backups.restore("acme", backup_id=str(offboard.backup.id), timeout=5)
    assert report.status_after == "INACTIVE" and report.replaced_schema is None
    assert await state_of(su, tenant.schema_name) == before
    await service.reactivate("acme")
    assert (await service.tenant("acme")).status is TenantStatus.ACTIVE  # type: ignore[union-attr]


async def test_the_plan_refuses_bad_chains_and_input(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    _, points = await history(service, su)
    full = points[0][0]
    with pytest.raises(InvalidInput, match="exactly one"):
        await service.backups.restore_plan("acme")
    with pytest.raises(Exception, match="no succeeded backup covering"):
        await service.backups.restore_plan("acme", to=full.started_at - timedelta(days=1))
    await su.execute(
        "UPDATE backups SET verify_result = 'checksum-mismatch: planted', verify_level = "
        "'checksum' WHERE id = $1",
        full.id,
    )
    with pytest.raises(InvalidState, match=f"backup {full.id}.*failed its last verification"):
        await service.backups.restore_plan("acme", backup_id=str(points[2][0].id))


def test_side_schema_names_fit_and_never_collide() -> None:
    key = "k" * 56
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    first = side_schema(key, RECOVERY, at, set())
    second = side_schema(key, RECOVERY, at, {first})
    assert len(first.encode()) <= NAME_LIMIT and len(second.encode()) <= NAME_LIMIT
    assert first != second and is_side_schema(key, RECOVERY, second)
    assert schema_prefix(key, REPLACED) != schema_prefix("k" * 55, REPLACED)
    assert not is_side_schema("a", RECOVERY, side_schema("ab", RECOVERY, at, set()))


def test_the_renamer_leaves_copy_data_alone() -> None:
    script = (
        b"CREATE SCHEMA tenant_acme;\nSET transaction_timeout = 0;\n"
        b"CREATE TABLE tenant_acme.customers (id int);\n"
        b"COPY tenant_acme.customers (id, note) FROM stdin;\n"
        b"1\ttenant_acme is my name\n2\t\\\\.\n\\.\n"
        b"ALTER TABLE ONLY tenant_acme.customers ADD CONSTRAINT x;\n"
        b"COMMENT ON TABLE \"tenant_acme\".customers IS 'tenant_acme2';"
    )
    renamer = SchemaRenamer("tenant_acme", "tenant_acme__recovery_1", drop_timeout=True)
    out = b"".join(renamer.feed(script[i : i + 7]) for i in range(0, len(script), 7))
    out += renamer.finish()
    assert out == (
        b"CREATE SCHEMA tenant_acme__recovery_1;\n"
        b"CREATE TABLE tenant_acme__recovery_1.customers (id int);\n"
        b"COPY tenant_acme__recovery_1.customers (id, note) FROM stdin;\n"
        b"1\ttenant_acme is my name\n2\t\\\\.\n\\.\n"
        b"ALTER TABLE ONLY tenant_acme__recovery_1.customers ADD CONSTRAINT x;\n"
        b"COMMENT ON TABLE \"tenant_acme__recovery_1\".customers IS 'tenant_acme2';"
    )
