"""Backups on real PostgreSQL: the full pipeline read back by standard tools, stages switched
off, one streaming pass, incrementals exact under concurrency, the chain rules."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import AgeKey

from console.config import BackupSettings, Settings
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.binaries import PgBinaries
from console.core.errors import NotConfigured
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
