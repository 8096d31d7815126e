"""Backups on real PostgreSQL: the full pipeline read back by standard tools, stages switched
off, one streaming pass, incrementals exact under concurrency, the chain rules."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import AgeKey

from console.config import BackupSettings, Settings
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.backups.keys import load_identities
from console.core.backups.reading import Expected, open_stream
from console.core.binaries import PgBinaries
from console.core.errors import NotConfigured
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant

TENANT_TABLES = ("categories", "customers", "deletion_log", "order_items", "orders", "products")


def pg_restore() -> str:
    return str(PgBinaries.embedded().tool("pg_restore"))


async def add_customers(conn: asyncpg.Connection, tenant: Tenant, *names: str) -> None:
    await conn.executemany(
        f"INSERT INTO {tenant.schema_name}.customers (email, full_name) VALUES ($1, $2)",
        [(f"{n.lower()}@example.com", n) for n in names],
    )


async def backup(service: ConsoleService, key: str, kind: BackupKind | None = None) -> BackupRecord:
    report = await service.backups.run([key], kind)
    assert not report.failures, report.failures
    record = report.outcomes[0].record
    assert record is not None
    return record


def manifest_of(record: BackupRecord) -> dict[str, Any]:
    assert record.location is not None
    if record.kind is BackupKind.INCREMENTAL:
        path = record.location / "manifest.json"
    else:
        path = record.location.with_name(record.location.name.split(".")[0] + ".manifest.json")
    return json.loads(path.read_text())


def shell(command: str) -> str:
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command!r} exited {result.returncode}: {result.stderr}"
    return result.stdout


# -- full: standard tools, stages, one pass -------------------------------------------------------


async def test_standard_tools_read_a_full_backup(
    service: ConsoleService, su: asyncpg.Connection, age_key: AgeKey
) -> None:
    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann", "Bob")
    record = await backup(service, "acme")
    assert (record.kind, record.status, record.reason) == (
        BackupKind.FULL,
        BackupStatus.SUCCEEDED,
        "manual",
    )
    assert record.location is not None and record.location.name.endswith(".dump.zst.age")
    assert record.encrypted and record.compressed
    assert hashlib.sha256(record.location.read_bytes()).hexdigest() == record.sha256
    assert record.location.stat().st_size == record.bytes
    assert record.location.stat().st_mode & 0o777 == 0o600
    assert record.location.parent.stat().st_mode & 0o777 == 0o700

    listing = shell(
        f"age -d -i {age_key.identity_file} {record.location} | zstd -d | {pg_restore()} -l"
    )
    for table in TENANT_TABLES:
        assert f" TABLE tenant_acme {table} " in listing

    manifest = manifest_of(record)
    assert manifest["tables"]["customers"]["rows"] == 2
    assert manifest["encryption"]["recipients"] == list(record.recipients)
    assert manifest["compression"] == {"algorithm": "zstd", "level": 3}
    assert manifest["sha256"] == record.sha256
    digest = await su.fetchval(
        "SELECT coalesce(sum(('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0)::text "
        "FROM tenant_acme.customers r"
    )
    assert manifest["tables"]["customers"]["digest"] == digest


async def test_stages_switched_off_are_skipped_and_the_catalog_says_so(
    make_service, settings: Settings, su: asyncpg.Connection
) -> None:
    expected = {
        (False, False): ".dump",
        (True, False): ".dump.zst",
        (False, True): ".dump.age",
    }
    service = None
    for (compression, encryption), suffix in expected.items():
        changed = dataclasses.replace(
            settings,
            backup=dataclasses.replace(
                settings.backup, compression=compression, encryption=encryption
            ),
        )
        service = await make_service(settings=changed)
        if compression is encryption is False:
            await service.init()
            await service.provision("acme")
        record = await backup(service, "acme", BackupKind.FULL)
        assert record.location is not None and record.location.name.endswith(suffix)
        assert (record.compressed, record.encrypted) == (compression, encryption)
        manifest = manifest_of(record)
        assert (manifest["compression"] is not None, manifest["encryption"] is not None) == (
            compression,
            encryption,
        )
        assert record.recipients == (() if not encryption else record.recipients)
        assert bool(record.recipients) is encryption
        if not compression and not encryption:
            # the plain archive is pg_dump's own custom format, readable as it is
            listing = shell(f"{pg_restore()} -l {record.location}")
            assert " TABLE tenant_acme customers " in listing
            assert record.raw_bytes == record.bytes
        elif not encryption:
            assert record.raw_bytes is not None and record.bytes is not None
            assert record.bytes < record.raw_bytes  # compressed
            shell(f"zstd -d -c {record.location} | {pg_restore()} -l")
    rows = await su.fetch("SELECT compressed, encrypted FROM public.backups ORDER BY started_at")
    assert [(r["compressed"], r["encrypted"]) for r in rows] == list(expected)


async def test_encryption_without_a_recipient_is_refused_naming_the_setting(
    make_service, settings: Settings, su: asyncpg.Connection
) -> None:
    bare = dataclasses.replace(settings, backup=BackupSettings(dir=settings.backup.dir))
    service = await make_service(settings=bare)
    await service.init()
    await service.provision("acme")
    with pytest.raises(NotConfigured, match=r"backup\.recipients") as err:
        await service.backups.run(None)
    assert err.value.exit_code == 2
    with pytest.raises(NotConfigured, match=r"backup\.recipients_file"):
        await service.deactivate("acme", timeout=1)
    assert await su.fetchval("SELECT count(*) FROM public.backups") == 0
    assert await su.fetchval("SELECT status::text FROM public.tenants") == "ACTIVE"


# -- incremental ---------------------------------------------------------------------------------


async def plaintext(service: ConsoleService, record: BackupRecord, name: str) -> bytes:
    """One stored file of an incremental, decrypted and decompressed by the read side."""
    assert record.location is not None
    identities = load_identities(service.settings.backup)
    expected = Expected(None, None, record.compressed, record.encrypted, identities)
    async with open_stream(record.location / name, expected) as stream:
        data = b"".join([chunk async for chunk in stream])
        await stream.finish()
    return data


async def test_incremental_is_exact_under_concurrency_and_carries_updates_and_deletes(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann", "Bob")
    # A transaction writes before the parent's snapshot and commits after it.
    straddler = await asyncpg.connect(database_dsn)
    try:
        tx = straddler.transaction()
        await tx.start()
        await add_customers(straddler, tenant, "Straddle")
        written_at = await straddler.fetchval(
            "SELECT updated_at FROM tenant_acme.customers WHERE full_name = 'Straddle'"
        )
        full = await backup(service, "acme")
        await tx.commit()
    finally:
        await straddler.close()
    assert full.kind is BackupKind.FULL
    assert manifest_of(full)["tables"]["customers"]["rows"] == 2  # Straddle was not visible
    # a timestamp boundary would miss it: it was written before the parent's snapshot
    assert full.covers_until is not None and written_at < full.covers_until

    first = await backup(service, "acme")
    assert (first.kind, first.parent_id) == (BackupKind.INCREMENTAL, full.id)
    manifest = manifest_of(first)
    assert manifest["chain"] == [str(full.id)]
    assert manifest["tables"]["customers"]["changed_rows"] == 1
    assert manifest["tables"]["customers"]["rows"] == 3
    assert [f["table"] for f in manifest["files"]] == ["customers"]
    rows = (await plaintext(service, first, manifest["files"][0]["name"])).decode()
    assert rows.count("\n") == 1 and "\tStraddle\t" in rows
    assert manifest["columns"]["customers"][:3] == ["id", "email", "full_name"]
    assert (
        first.sha256
        == hashlib.sha256(
            f"{manifest['files'][0]['sha256']}  {manifest['files'][0]['name']}\n".encode()
        ).hexdigest()
    )

    ann = await su.fetchval("SELECT id FROM tenant_acme.customers WHERE full_name = 'Ann'")
    bob = await su.fetchval("SELECT id FROM tenant_acme.customers WHERE full_name = 'Bob'")
    await su.execute("UPDATE tenant_acme.customers SET full_name = 'Ann B.' WHERE id = $1", ann)
    await su.execute("DELETE FROM tenant_acme.customers WHERE id = $1", bob)
    second = await backup(service, "acme")
    assert (second.kind, second.parent_id) == (BackupKind.INCREMENTAL, first.id)
    manifest = manifest_of(second)
    assert manifest["chain"] == [str(full.id), str(first.id)]
    tables = manifest["tables"]
    assert (tables["customers"]["changed_rows"], tables["deletion_log"]["changed_rows"]) == (1, 1)
    assert tables["orders"]["changed_rows"] == 0
    by_table = {f["table"]: f["name"] for f in manifest["files"]}
    assert sorted(by_table) == ["customers", "deletion_log"]
    updated = (await plaintext(service, second, by_table["customers"])).decode()
    assert updated.startswith(f"{ann}\t") and "\tAnn B.\t" in updated
    deleted = (await plaintext(service, second, by_table["deletion_log"])).decode()
    assert f"\tcustomers\t{bob}\t" in deleted
    # the changed rows' digest is the digest of exactly those rows
    assert tables["customers"]["changed_digest"] == await su.fetchval(
        "SELECT coalesce(sum(('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0)::text "
        "FROM tenant_acme.customers r WHERE id = $1",
        ann,
    )

    unchanged = await backup(service, "acme")
    manifest = manifest_of(unchanged)
    assert (unchanged.kind, unchanged.parent_id) == (BackupKind.INCREMENTAL, second.id)
    assert manifest["files"] == [] and unchanged.bytes == 0
    assert all(t["changed_rows"] == 0 for t in manifest["tables"].values())
    assert unchanged.location is not None
    assert sorted(p.name for p in unchanged.location.iterdir()) == ["manifest.json"]
    await service.backups.check_stored(second)


async def test_a_chain_is_not_extended_past_a_revision_change_a_failure_or_a_missing_file(
    service: ConsoleService,
    make_service,
    settings: Settings,
    su: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    tenant = await service.provision("acme")
    await add_customers(su, tenant, "Ann")
    full = await backup(service, "acme")
    incremental = await backup(service, "acme")
    assert incremental.kind is BackupKind.INCREMENTAL

    # a migration ran (the tree revision changed): a full, and the run says why
    revision = await su.fetchval("SELECT version_num FROM tenant_acme.schema_version")
    await su.execute("UPDATE tenant_acme.schema_version SET version_num = 'moved_on'")
    events: list[StepEvent] = []
    report = await service.backups.run(["acme"], sink=events.append)
    outcome = report.outcomes[0]
    assert outcome.record is not None and outcome.record.kind is BackupKind.FULL
    why = f"the tree revision changed from {revision} to moved_on"
    assert outcome.why_full == why
    assert any(e.phase is Phase.INFO and why in e.message for e in events)
    await su.execute("UPDATE tenant_acme.schema_version SET version_num = $1", revision)
    assert (await backup(service, "acme")).kind is BackupKind.FULL  # changed back: again

    # the newest link failed: a full, never an incremental on top of it
    garbage = tmp_path / "garbage-recipients.txt"
    garbage.write_text("not a key\n")
    broken = await make_service(
        settings=dataclasses.replace(
            settings, backup=dataclasses.replace(settings.backup, recipients_file=str(garbage))
        )
    )
    failed = await broken.backups.run(["acme"])
    assert failed.failures and "garbage-recipients.txt line 1" in (failed.failures[0].error or "")
    after_failure = (await service.backups.run(["acme"])).outcomes[0]
    assert after_failure.record is not None and after_failure.record.kind is BackupKind.FULL
    assert after_failure.why_full is not None and "failed" in after_failure.why_full

    # a file of the newest link is missing: a full
    await su.execute("INSERT INTO tenant_acme.categories (name) VALUES ('New')")
    link = await backup(service, "acme")
    assert link.kind is BackupKind.INCREMENTAL and link.location is not None
    for stored in link.location.glob("*.copy*"):
        stored.unlink()
    gone = (await service.backups.run(["acme"])).outcomes[0]
    assert gone.record is not None and gone.record.kind is BackupKind.FULL
    assert gone.why_full is not None and "are missing" in gone.why_full
    assert full.id != gone.record.id
