"""Lifecycle operations on real PostgreSQL: a provision killed mid-way, concurrent operations,
deactivate draining lock holders, offboard's backup and exports, read-only mode."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import APP_ROLE, PROJECT_ROOT, AuditGate

from console.config import Settings
from console.core.binaries import PgBinaries
from console.core.errors import (
    InvalidInput,
    InvalidState,
    NotFound,
    OperationFailed,
    ReadOnlyMode,
    TenantBusy,
)
from console.core.hints import Field, Force
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.schema import catalog_fingerprint
from console.devenv.postgres import LocalCluster

TENANT_TABLES = ("categories", "products", "customers", "orders", "order_items", "deletion_log")

# Provision one tenant through the core API in another process (the CLI is not used here).
PROVISION_SCRIPT = """
import asyncio, dataclasses, sys
from console.config import BackupSettings, Settings
from console.core.hints import Field, Force
from console.core.service import ConsoleService

async def main(dsn, backup_dir, key):
    settings = dataclasses.replace(Settings(), backup=BackupSettings(dir=backup_dir))
    async with ConsoleService(settings, dsn=dsn) as service:
        await service.provision(key)

asyncio.run(main(*sys.argv[1:]))
"""


async def status_of(su: asyncpg.Connection, key: str) -> str | None:
    return await su.fetchval("SELECT status::text FROM public.tenants WHERE key = $1", key)


async def schema_exists(su: asyncpg.Connection, schema: str) -> bool:
    return bool(await su.fetchval("SELECT to_regnamespace($1) IS NOT NULL", schema))


async def audit_actions(su: asyncpg.Connection, key: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await su.fetch(
        "SELECT a.action_type, a.details FROM public.tenant_audit_log a "
        "JOIN public.tenants t ON t.id = a.tenant_id WHERE t.key = $1 "
        "ORDER BY a.action_timestamp, a.id",
        key,
    )
    return [(r["action_type"], r["details"]) for r in rows]


async def fingerprint(service: ConsoleService, tenant: Tenant) -> dict[str, list[Any]]:
    async with service.db.acquire() as conn:
        return await catalog_fingerprint(conn, tenant.schema_name, tenant.id)


async def app_can_read(app_conn, tenant: Tenant) -> int:
    """Rows of the tenant's categories the app role sees with the tenant's id set."""
    conn = await app_conn()
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id)
            )
            return int(await conn.fetchval(f"SELECT count(*) FROM {tenant.schema_name}.categories"))
    finally:
        await conn.close()


# -- a provision killed mid-way ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_at", "schema_built"),
    [("provision.register", False), ("provision.schema", True)],
    ids=["before-schema", "after-schema"],
)
async def test_killed_provision_is_completed_by_the_next_run(
    service: ConsoleService,
    su: asyncpg.Connection,
    gate: AuditGate,
    database_dsn: str,
    settings: Settings,
    held_at: str,
    schema_built: bool,
) -> None:
    reference = await service.provision("reference")
    await gate.close(held_at)
    before = [
        r["pid"]
        for r in await su.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROVISION_SCRIPT,
        database_dsn,
        str(settings.backup_dir()),
        "victim",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )

    async def alive() -> None:
        if proc.returncode is not None:
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            pytest.fail(f"the provision process exited {proc.returncode} early: {err[-2000:]}")

    try:
        await gate.wait_for_waiter(alive)
        assert await status_of(su, "victim") == "INITIALIZING"
        assert await schema_exists(su, "tenant_victim") is schema_built
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    # The killed console's backends: its idle ones go away with its sockets; the one held at the
    # gate would only notice once it tries to answer, so end it as the crash would have.
    orphans = await su.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> ALL($1::int[])",
        before,
    )
    for (pid,) in orphans:
        await su.fetchval("SELECT pg_terminate_backend($1, 30000)", pid)
    await gate.open()

    # never ACTIVE, never half-built and marked otherwise
    assert await status_of(su, "victim") == "INITIALIZING"
    assert await schema_exists(su, "tenant_victim") is schema_built
    assert not await su.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    ), "the killed provision's tenant lock is still held"

    tenant = await service.provision("victim")
    assert tenant.status is TenantStatus.ACTIVE
    assert await status_of(su, "victim") == "ACTIVE"
    actions = await audit_actions(su, "victim")
    first_run = ["provision.register"] if schema_built else []
    assert [a for a, _ in actions] == [
        *first_run,
        "provision.register",
        "provision.schema",
        "provision.init_data",
        "provision.verify",
        "provision.activate",
    ]
    rerun = dict(actions[len(first_run) :])
    assert rerun["provision.register"]["resumed_from"] == "INITIALIZING"
    assert rerun["provision.schema"]["method"] == ("existing" if schema_built else "clone")
    assert await fingerprint(service, tenant) == await fingerprint(service, reference)


async def test_failed_provision_is_marked_failed_and_can_be_resumed(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    # Sabotage the verify step: the app role loses USAGE on the schema between grant and verify.
    await su.execute(f"""
        CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.action_type = 'provision.init_data' THEN
                EXECUTE 'REVOKE USAGE ON SCHEMA tenant_acme FROM {APP_ROLE}';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER sabotage BEFORE INSERT ON public.tenant_audit_log
            FOR EACH ROW EXECUTE FUNCTION public.sabotage();
    """)
    with pytest.raises(OperationFailed, match="provision acme failed at step 'verify'"):
        await service.provision("acme")
    assert await status_of(su, "acme") == "FAILED"
    assert (await audit_actions(su, "acme"))[-1][0] == "provision.failed"

    await su.execute("DROP TRIGGER sabotage ON public.tenant_audit_log")
    tenant = await service.provision("acme")
    assert tenant.status is TenantStatus.ACTIVE
    assert (await audit_actions(su, "acme"))[-5][1]["resumed_from"] == "FAILED"


# -- concurrent operations on one tenant ---------------------------------------------------------


async def test_concurrent_operations_on_one_tenant_exactly_one_wins(
    service: ConsoleService, make_service, su: asyncpg.Connection, gate: AuditGate
) -> None:
    await service.provision("acme")
    other = await make_service()
    await gate.close("deactivate.backup")
    first = asyncio.create_task(service.deactivate("acme", timeout=5))

    async def first_alive() -> None:
        if first.done():
            await first  # surfaces its exception
            pytest.fail("the first deactivate finished before it reached the gate")

    try:
        await gate.wait_for_waiter(first_alive)
        for attempt in (
            lambda: other.deactivate("acme", timeout=5),
            lambda: other.offboard("acme", timeout=5),
            lambda: other.reactivate("acme"),
            lambda: other.provision("acme"),
        ):
            with pytest.raises(TenantBusy) as err:
                await attempt()
            message = str(err.value)
            assert "tenant 'acme' is busy: goconsole deactivate" in message
            assert "pid " in message and " since " in message
    finally:
        await gate.open()
        winner = await first
    assert winner.status is TenantStatus.INACTIVE
    assert await status_of(su, "acme") == "INACTIVE"
    assert (
        await su.fetchval(
            "SELECT count(*) FROM public.backups b JOIN public.tenants t ON t.id = b.tenant_id "
            "WHERE t.key = 'acme'"
        )
        == 1
    )
    actions = [a for a, _ in await audit_actions(su, "acme")]
    assert [a for a in actions if not a.startswith("provision.")] == [
        "deactivate.backup",
        "deactivate.block",
        "deactivate.drain",
        "deactivate.finalize",
    ]
    # the lock is free again: the loser can now do its work
    assert (await other.reactivate("acme")).status is TenantStatus.ACTIVE


async def test_concurrent_provisions_of_one_key_exactly_one_wins(
    service: ConsoleService, make_service, su: asyncpg.Connection, gate: AuditGate
) -> None:
    other = await make_service()
    await gate.close("provision.schema")
    first = asyncio.create_task(service.provision("acme"))

    async def first_alive() -> None:
        if first.done():
            await first
            pytest.fail("the first provision finished before it reached the gate")

    try:
        await gate.wait_for_waiter(first_alive)
        with pytest.raises(TenantBusy, match="tenant 'acme' is busy: goconsole provision"):
            await other.provision("acme")
    finally:
        await gate.open()
        winner = await first
    assert winner.status is TenantStatus.ACTIVE
    with pytest.raises(InvalidInput, match="already in use"):
        await other.provision("acme")
    assert await su.fetchval("SELECT count(*) FROM public.tenants") == 1


# -- deactivate: drain, timeout, force; reactivate -----------------------------------------------


async def test_deactivate_waits_for_lock_holders_then_force_terminates_them(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str, app_conn
) -> None:
    tenant = await service.provision("acme")
    holder = await asyncpg.connect(database_dsn)
    try:
        holder_pid = holder.get_server_pid()
        holder_tx = holder.transaction()
        await holder_tx.start()
        await holder.fetchval("SELECT count(*) FROM tenant_acme.customers")

        with pytest.raises(OperationFailed) as err:
            await service.deactivate("acme", timeout=0.5)
        message = str(err.value)
        assert f"pid {holder_pid} " in message
        assert "still hold locks on tenant_acme after 0.5s" in message
        assert err.value.hint == Force()
        # rolled back: ACTIVE again and usable by the application
        assert await status_of(su, "acme") == "ACTIVE"
        assert await app_can_read(app_conn, tenant) == 1
        # the holder was left alone
        assert await holder.fetchval("SELECT 1") == 1

        inactive = await service.deactivate("acme", timeout=0.5, force=True)
        assert inactive.status is TenantStatus.INACTIVE
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await holder.fetchval("SELECT 1")
        assert not await su.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", holder_pid
        )
    finally:
        holder.terminate()

    assert await status_of(su, "acme") == "INACTIVE"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
        await app_can_read(app_conn, tenant)
    actions = [a for a, _ in await audit_actions(su, "acme")]
    assert actions[5:] == [
        "deactivate.backup",
        "deactivate.block",
        "deactivate.rollback",
        "deactivate.failed",
        "deactivate.backup",
        "deactivate.block",
        "deactivate.drain",
        "deactivate.finalize",
    ]
    drain = [d for a, d in await audit_actions(su, "acme") if a == "deactivate.drain"]
    assert drain[-1]["terminated"] == [holder_pid]

    active = await service.reactivate("acme")
    assert active.status is TenantStatus.ACTIVE
    assert await status_of(su, "acme") == "ACTIVE"
    assert await app_can_read(app_conn, tenant) == 1


async def test_state_machine_refuses_out_of_order_operations(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    await service.provision("acme")
    with pytest.raises(InvalidState, match="tenant 'acme' is ACTIVE; reactivate needs INACTIVE"):
        await service.reactivate("acme")
    await service.deactivate("acme", timeout=1)
    with pytest.raises(InvalidState, match="is INACTIVE; deactivate needs"):
        await service.deactivate("acme", timeout=1)
    with pytest.raises(NotFound, match="no tenant with key 'ghost'"):
        await service.deactivate("ghost", timeout=1)
    with pytest.raises(InvalidInput, match=r"^timeout must be between") as bad:
        await service.deactivate("acme", timeout=-1)
    assert bad.value.field is Field.TIMEOUT
    assert await status_of(su, "acme") == "INACTIVE"


# -- offboard ------------------------------------------------------------------------------------


async def test_offboard_leaves_a_verified_restorable_backup_and_an_audit_export(
    service: ConsoleService,
    su: asyncpg.Connection,
    database_dsn: str,
    pg_cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    tenant = await service.provision("acme")
    await su.execute(
        "INSERT INTO tenant_acme.customers (email, full_name) VALUES ('ann@acme.example', 'Ann')"
    )
    report = await service.offboard("acme", timeout=1)

    assert await status_of(su, "acme") == "ARCHIVED"
    assert not await schema_exists(su, "tenant_acme")

    row = await su.fetchrow(
        "SELECT location, sha256, bytes, status, verify_result, reason FROM public.backups "
        "WHERE tenant_id = $1",
        tenant.id,
    )
    assert row is not None
    dump = Path(row["location"])
    assert dump.is_file()
    assert dump.is_relative_to(service.settings.backup_dir() / "acme")
    assert (row["status"], row["verify_result"], row["reason"]) == ("succeeded", "ok", "offboard")
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == row["sha256"]
    assert dump.stat().st_size == row["bytes"]
    assert report.backup is not None
    assert (report.backup.location, report.backup.sha256) == (dump, row["sha256"])
    assert report.backup.verified
    assert dump.name.endswith(".dump.zst.age")

    # age and zstd give back the pg_dump archive
    plain = tmp_path / "acme.dump"
    identity = service.settings.backup.identity_file
    await run("sh", "-c", f"age -d -i '{identity}' '{dump}' | zstd -d -q -o '{plain}'")
    pg_restore = str(PgBinaries.embedded().tool("pg_restore"))
    listing = await run(pg_restore, "--list", str(plain))
    for table in TENANT_TABLES:
        assert f" TABLE tenant_acme {table} " in listing, f"{table} missing from the dump"
    # and it really restores: the schema comes back with its data. pg_restore 18 sets
    # transaction_timeout, which servers before 17 do not know; that one error is tolerated.
    proc = await asyncio.create_subprocess_exec(
        pg_restore,
        "--dbname",
        database_dsn,
        str(plain),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    errors = [line for line in stderr.decode().splitlines() if "ERROR:" in line]
    tolerated = 'unrecognized configuration parameter "transaction_timeout"'
    if pg_cluster.binaries.major_version() >= 17:
        assert (proc.returncode, errors) == (0, [])
    else:
        assert errors == [f"pg_restore: error: could not execute query: ERROR:  {tolerated}"]
    assert await su.fetchval("SELECT full_name FROM tenant_acme.customers") == "Ann"

    export = json.loads(report.audit_export.read_text())
    assert report.audit_export.parent == dump.parent
    assert export["tenant"]["key"] == "acme"
    assert len(export["entries"]) == report.audit_entries > 0
    assert hashlib.sha256(report.audit_export.read_bytes()).hexdigest() == report.audit_sha256
    assert export["entries"][0]["action_type"] == "provision.register"
    assert "offboard.backup" in [e["action_type"] for e in export["entries"]]
    assert report.report_path is not None
    assert json.loads(report.report_path.with_suffix(".json").read_text())["tenant"] == "acme"
    assert "Offboarding report for tenant acme" in report.as_text()
    actions = [a for a, _ in await audit_actions(su, "acme")]
    assert actions[-5:] == [
        "offboard.block",
        "offboard.drain",
        "offboard.export_audit",
        "offboard.drop",
        "offboard.archive",
    ]

    with pytest.raises(InvalidInput, match="already in use"):
        await service.provision("acme")
    assert await status_of(su, "acme") == "ARCHIVED"
    with pytest.raises(InvalidState, match="is ARCHIVED"):
        await service.offboard("acme", timeout=1)


async def run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}: {err.decode()}"
    return out.decode()


# -- read-only mode ------------------------------------------------------------------------------


async def test_read_only_service_refuses_every_mutation_and_writes_nothing(
    service: ConsoleService, make_service, su: asyncpg.Connection
) -> None:
    await service.provision("acme")
    await service.provision("beta")
    await service.deactivate("beta", timeout=1)
    snapshot = """
        SELECT (SELECT count(*) FROM public.tenant_audit_log),
               (SELECT count(*) FROM public.backups),
               (SELECT array_agg(key || ':' || status ORDER BY key) FROM public.tenants)
    """
    before = tuple(await su.fetchrow(snapshot))
    files_before = sorted(service.settings.backup_dir().rglob("*"))

    read_only = await make_service(read_only=True)
    attempts = {
        "provision": lambda: read_only.provision("gamma"),
        "deactivate": lambda: read_only.deactivate("acme", timeout=1),
        "offboard": lambda: read_only.offboard("acme", timeout=1),
        "reactivate": lambda: read_only.reactivate("beta"),
        "init": lambda: read_only.init(),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ReadOnlyMode, match=f"{name} refused: the console is in read-only"):
            await attempt()

    assert tuple(await su.fetchrow(snapshot)) == before
    assert sorted(service.settings.backup_dir().rglob("*")) == files_before
    assert not await schema_exists(su, "tenant_gamma")
    # reads still work
    assert [t.key for t in await read_only.tenants()] == ["acme", "beta"]
