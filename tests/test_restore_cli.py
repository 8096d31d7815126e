"""``goconsole backups restore|replaced|purge-replaced|drill`` as real subprocesses, and a
console killed at every step of a restore (SIGKILL: no clean-up runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import asyncpg
import pytest
import test_backup_cli
from helpers import AgeKey
from test_backup_cli import ok
from test_restore import state_of

from console.core.backups.recovery import RECOVERY, is_side_schema

backups_cli = test_backup_cli.backups_cli  # the fixture, shared
STEPS = ("plan", "recover", "apply", "validate", "switch", "finish")

KILLER = """
import asyncio, dataclasses, os, signal, sys
from console.config import BackupSettings, Settings
from console.core.service import ConsoleService

dsn, folder, recipient, identity, backup_id, step = sys.argv[1:]

async def main():
    settings = dataclasses.replace(Settings(), backup=BackupSettings(
        dir=folder, recipients=(recipient,), identity_file=identity))
    async with ConsoleService(settings, dsn=dsn) as service:
        async def gate(name):
            if name == step:
                os.kill(os.getpid(), signal.SIGKILL)
        service.backups.restorer.between_steps = gate
        await service.backups.restore("acme", backup_id=backup_id, timeout=5)

asyncio.run(main())
"""


async def test_restore_cli_plan_confirm_report_and_replaced(backups_cli, database_dsn: str) -> None:
    ok(backups_cli("init"))
    ok(backups_cli("tenants", "provision", "acme"))
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute(
            "INSERT INTO tenant_acme.customers (email, full_name) VALUES ('a@x.io', 'Ann')"
        )
        first = json.loads(ok(backups_cli("backups", "run", "acme", "--json")).stdout)
        backup_id = first["tenants"][0]["backup"]["id"]
        await conn.execute(
            "INSERT INTO tenant_acme.customers (email, full_name) VALUES ('b@x.io', 'Bob')"
        )
        bad = backups_cli("backups", "restore", "acme")
        assert bad.returncode == 2 and "exactly one of --to" in bad.stderr
        bad = backups_cli("backups", "restore", "acme", "--to", "yesterday")
        assert bad.returncode == 2 and "not a timestamp" in bad.stderr
        dry = ok(backups_cli("backups", "restore", "acme", "--backup", backup_id, "--dry-run"))
        assert "Restore plan for tenant acme" in dry.stdout and backup_id in dry.stdout
        unconfirmed = backups_cli("backups", "restore", "acme", "--backup", backup_id)
        assert unconfirmed.returncode == 2 and "pass --yes" in unconfirmed.stderr
        done = ok(backups_cli("backups", "restore", "acme", "--backup", backup_id, "--yes"))
        assert "Restore of tenant acme" in done.stdout and "customers 1" in done.stdout
        assert "replaced    tenant_acme__replaced_" in done.stdout
        assert await conn.fetchval("SELECT count(*) FROM tenant_acme.customers") == 1
        listed = json.loads(ok(backups_cli("backups", "replaced", "--json")).stdout)
        assert [r["tenant"] for r in listed] == ["acme"]
        ok(backups_cli("backups", "restore", "acme", "--rollback", "--yes"))
        assert await conn.fetchval("SELECT count(*) FROM tenant_acme.customers") == 2
        purge = ok(backups_cli("backups", "purge-replaced", "--dry-run"))
        assert "0 would drop, 1 kept" in purge.stdout
        drill = json.loads(ok(backups_cli("backups", "drill", "acme", "--json")).stdout)
        assert drill["tenants"][0]["result"] == "ok"
        assert (
            await conn.fetchval(
                "SELECT verify_level || ':' || verify_result FROM backups WHERE id = $1::uuid",
                backup_id,
            )
            == "restore:ok"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("step", STEPS)
async def test_a_console_killed_at_each_step_leaves_one_complete_schema(
    step: str, service, su: asyncpg.Connection, age_key: AgeKey, database_dsn: str, app_conn
) -> None:
    from test_backups import add_customers, backup

    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann")
    record = await backup(service, "acme")
    target = await state_of(su, tenant.schema_name)
    await add_customers(su, tenant, "Bob")
    original = await state_of(su, tenant.schema_name)
    folder = service.settings.backup.dir
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            database_dsn,
            folder,
            age_key.recipient,
            str(age_key.identity_file),
            str(record.id),
            step,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("GOCONSOLE_")},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    live = await state_of(su, tenant.schema_name)
    assert live == (target if step == "finish" else original)
    conn = await app_conn()
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, false)", str(tenant.id))
    assert await conn.fetchval("SELECT count(*) FROM tenant_acme.customers") == live["customers"][0]
    status = await su.fetchval("SELECT status FROM tenants WHERE key = 'acme'")
    assert status == ("ACTIVE" if step == "plan" else "RESTORING")
    if STEPS.index(step) % 2:
        await service.backups.restore("acme", backup_id=str(record.id), timeout=5)
        assert await state_of(su, tenant.schema_name) == target
    else:
        await service.backups.discard_recovery("acme")
    schemas = [
        r[0]
        for r in await su.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'tenant_acme')"
        )
    ]
    assert not [s for s in schemas if is_side_schema("acme", RECOVERY, s)]
    assert await su.fetchval("SELECT status FROM tenants WHERE key = 'acme'") == "ACTIVE"
