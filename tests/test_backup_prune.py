"""``backups prune`` on real catalog rows: files and manifests removed, rows expired, one audit row
per removal, dry runs, read-only mode, a busy tenant, archived tenants."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from console.config import BackupSettings, Settings
from console.core import locks
from console.core.backups.prune import PruneReport
from console.core.errors import ReadOnlyMode
from console.core.service import ConsoleService

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


async def add_tenant(su: asyncpg.Connection, key: str, status: str = "ACTIVE") -> uuid.UUID:
    """A registry row (the schema is not needed to prune its backups)."""
    tenant_id: uuid.UUID = await su.fetchval(
        "INSERT INTO public.tenants (key, schema_name, display_name, status) "
        "VALUES ($1, 'tenant_' || $1, $1, $2) RETURNING id",
        key,
        status,
    )
    return tenant_id


async def add_backup(
    su: asyncpg.Connection,
    root: Path,
    tenant: uuid.UUID,
    days_ago: float,
    parent: uuid.UUID | None = None,
    verified: bool = False,
) -> uuid.UUID:
    """A succeeded catalog row with its files on disk, covering NOW - ``days_ago``."""
    backup_id = uuid.uuid4()
    at = NOW - timedelta(days=days_ago)
    stamp = at.strftime("%Y%m%dT%H%M%S%fZ")
    key = await su.fetchval("SELECT key FROM public.tenants WHERE id = $1", tenant)
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    if parent is None:
        location = folder / f"{stamp}-full-{str(backup_id)[:8]}.dump.zst.age"
        location.write_bytes(b"full")
        location.with_name(f"{stamp}-full-{str(backup_id)[:8]}.manifest.json").write_text("{}")
    else:
        location = folder / f"{stamp}-incr-{str(backup_id)[:8]}"
        location.mkdir()
        (location / "orders.copy.zst.age").write_bytes(b"incr")
        (location / "manifest.json").write_text("{}")
    await su.execute(
        "INSERT INTO public.backups (id, tenant_id, kind, parent_id, status, started_at, "
        "finished_at, covers_until, location, bytes, verified_at, verify_result) "
        "VALUES ($1, $2, $3, $4, 'succeeded', $5, $5, $5, $6, 4, $7, $8)",
        backup_id,
        tenant,
        "full" if parent is None else "incremental",
        parent,
        at,
        str(location),
        at if verified else None,
        "ok" if verified else None,
    )
    return backup_id


async def statuses(su: asyncpg.Connection) -> dict[uuid.UUID, tuple[str, bool]]:
    rows = await su.fetch("SELECT id, status, expired_at IS NOT NULL AS e FROM public.backups")
    return {r["id"]: (r["status"], r["e"]) for r in rows}


@pytest.fixture
def root(settings: Settings) -> Path:
    return Path(settings.backup.dir)


def removed_ids(report: PruneReport) -> list[uuid.UUID]:
    return [p.backup.id for p in report.removed]


async def test_prune_removes_files_expires_rows_and_audits_each_removal(
    service: ConsoleService, su: asyncpg.Connection, root: Path
) -> None:
    acme = await add_tenant(su, "acme")
    old = await add_backup(su, root, acme, 45)
    old_incr = await add_backup(su, root, acme, 44, parent=old)
    anchor = await add_backup(su, root, acme, 35)
    recent = await add_backup(su, root, acme, 3)
    recent_incr = await add_backup(su, root, acme, 2, parent=recent)
    files = {r["id"]: Path(r["location"]) for r in await su.fetch("SELECT * FROM backups")}

    report = await service.backups.prune(now=NOW)

    assert removed_ids(report) == [old_incr, old]
    assert not report.failures
    assert not files[old].exists() and not files[old_incr].exists()
    assert not list(files[old].parent.glob(f"*{str(old)[:8]}*")), "the manifest is left"
    for kept in (anchor, recent, recent_incr):
        assert files[kept].exists()
    rows = await statuses(su)
    assert rows[old] == rows[old_incr] == ("expired", True)
    assert rows[anchor] == rows[recent] == ("succeeded", False)
    audit = await su.fetch(
        "SELECT details FROM tenant_audit_log WHERE action_type = 'prune.remove' "
        "AND tenant_id = $1 ORDER BY action_timestamp",
        acme,
    )
    assert [a["details"]["id"] for a in audit] == [str(old_incr), str(old)]
    assert str(files[old]) in audit[1]["details"]["files"]
    assert "its full" in audit[0]["details"]["reason"]
    assert "30-day full retention" in audit[1]["details"]["reason"]

    again = await service.backups.prune(now=NOW)
    assert again.removed == [] and not again.failures


async def test_a_dry_run_lists_and_changes_nothing_even_read_only(
    service: ConsoleService,
    make_service,
    su: asyncpg.Connection,
    root: Path,
    settings: Settings,
) -> None:
    acme = await add_tenant(su, "acme")
    old = await add_backup(su, root, acme, 45)
    await add_backup(su, root, acme, 35)
    before = await statuses(su)
    read_only = await make_service(read_only=True)

    report = await read_only.backups.prune(dry_run=True, now=NOW)

    assert report.dry_run and removed_ids(report) == [old]
    assert all(path.exists() for path in report.removed[0].files)
    assert len(report.removed[0].files) == 2
    assert await statuses(su) == before
    assert report.as_json()["removed"][0]["reason"] == report.removed[0].reason
    with pytest.raises(ReadOnlyMode, match="backups prune"):
        await read_only.backups.prune(now=NOW)
    assert await statuses(su) == before


async def test_a_busy_tenant_is_reported_and_the_others_are_pruned(
    service: ConsoleService, su: asyncpg.Connection, root: Path, database_dsn: str
) -> None:
    busy, free = await add_tenant(su, "busy"), await add_tenant(su, "free")
    busy_old = await add_backup(su, root, busy, 45)
    await add_backup(su, root, busy, 35)
    free_old = await add_backup(su, root, free, 45)
    await add_backup(su, root, free, 35)
    holder = await asyncpg.connect(database_dsn)
    try:
        assert await locks.try_lock(holder, "busy")
        report = await service.backups.prune(now=NOW)
    finally:
        await holder.close()
    assert removed_ids(report) == [free_old]
    assert set(report.failures) == {"busy"}
    assert (await statuses(su))[busy_old] == ("succeeded", False)


async def test_the_last_verified_backup_survives_and_says_why(
    service: ConsoleService, su: asyncpg.Connection, root: Path
) -> None:
    acme = await add_tenant(su, "acme")
    verified = await add_backup(su, root, acme, 60, verified=True)
    await add_backup(su, root, acme, 45)
    await add_backup(su, root, acme, 35)
    report = await service.backups.prune(now=NOW)
    assert verified not in removed_ids(report) and len(report.removed) == 1
    assert "last verified backup" in report.notes["acme"][0]


async def test_archived_tenants_follow_their_own_retention(
    make_service, su: asyncpg.Connection, root: Path, settings: Settings
) -> None:
    keep_settings = dataclasses.replace(
        settings, backup=dataclasses.replace(settings.backup, archived_retention_days=0)
    )
    service = await make_service(settings=keep_settings)
    await service.init()
    gone = await add_tenant(su, "gone", "ARCHIVED")
    backups = [await add_backup(su, root, gone, days, verified=True) for days in (400, 200)]
    await su.execute("ALTER TABLE tenants DISABLE TRIGGER tenants_touch_updated_at")
    await su.execute(
        "UPDATE tenants SET updated_at = $1 WHERE id = $2", NOW - timedelta(days=100), gone
    )
    await su.execute("ALTER TABLE tenants ENABLE TRIGGER tenants_touch_updated_at")
    assert (await service.backups.prune(now=NOW)).removed == []

    expiring = await make_service(
        settings=dataclasses.replace(
            settings, backup=BackupSettings(dir=settings.backup.dir, archived_retention_days=90)
        )
    )
    report = await expiring.backups.prune(now=NOW)
    assert removed_ids(report) == backups[::-1]
    assert "archive retention" in report.removed[0].reason
