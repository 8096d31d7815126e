"""The catalog rows of a backup being taken: started, succeeded or failed, and the files a
failed or interrupted backup leaves behind."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from console.config import BackupSettings
from console.core.backups.catalog import BackupKind
from console.core.backups.plan import Plan
from console.core.db import Database
from console.core.operations import describe_error
from console.core.tenants.registry import Tenant


async def start(
    conn: asyncpg.Connection,
    backup_id: uuid.UUID,
    tenant: Tenant,
    plan: Plan,
    reason: str,
    started_at: datetime,
    location: Path,
    settings: BackupSettings,
) -> None:
    """Insert the ``running`` row of a backup about to be written at ``location``."""
    await conn.execute(
        "INSERT INTO public.backups (id, tenant_id, kind, parent_id, reason, started_at, "
        "location, encrypted, compressed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        backup_id,
        tenant.id,
        plan.kind.value,
        plan.parent.id if plan.parent else None,
        reason,
        started_at,
        str(location),
        settings.encryption,
        settings.compression,
    )


async def close_interrupted(conn: asyncpg.Connection, tenant: Tenant) -> None:
    """Backups left ``running`` by a console that stopped mid-way (none can be running:
    the caller holds the tenant's lock): mark them failed, remove their files."""
    rows = await conn.fetch(
        "UPDATE public.backups SET status = 'failed', finished_at = clock_timestamp(), "
        "error = 'interrupted: the console stopped during the backup' "
        "WHERE tenant_id = $1 AND status = 'running' RETURNING kind, location",
        tenant.id,
    )
    for row in rows:
        if row["location"]:
            remove_outputs(Path(row["location"]), BackupKind(row["kind"]))


async def mark_succeeded(
    conn: asyncpg.Connection, backup_id: uuid.UUID, body: dict[str, Any], facts: dict[str, Any]
) -> None:
    """Record a finished backup: sizes, digest, snapshot facts and its whole manifest."""
    encryption = body["encryption"]
    await conn.execute(
        "UPDATE public.backups SET status = 'succeeded', finished_at = $2, "
        "bytes = $3, raw_bytes = $4, sha256 = $5, encrypted = $6, compressed = $7, "
        "covers_until = $8, snapshot = $9, lsn = $10::text::pg_lsn, "
        "server_version = $11, tree_revision = $12, duration_ms = $13, "
        "recipients = $14, manifest = $15 WHERE id = $1",
        backup_id,
        facts["finished_at"],
        body["bytes"],
        body["raw_bytes"],
        body["sha256"],
        encryption is not None,
        body["compression"] is not None,
        facts["covers_until"],
        facts["snapshot"],
        facts["lsn"],
        facts["server_version"],
        facts["tree_revision"],
        facts["duration_ms"],
        encryption["recipients"] if encryption else [],
        body,
    )


async def mark_failed(db: Database, backup_id: uuid.UUID, exc: BaseException, clock: float) -> None:
    """Record a failed backup with its reason and duration (``clock``: its perf_counter start);
    a database that went away leaves the row running, closed by the next backup."""
    try:
        async with db.acquire() as conn:
            await conn.execute(
                "UPDATE public.backups SET status = 'failed', finished_at = clock_timestamp(), "
                "error = $2, duration_ms = $3 WHERE id = $1",
                backup_id,
                describe_error(exc)[:2000],
                round((time.perf_counter() - clock) * 1000, 1),
            )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pass  # the database went away: the row stays running and the next backup closes it


def remove_outputs(location: Path, kind: BackupKind) -> None:
    """Remove whatever a failed backup at ``location`` left (files, partial files, folder)."""
    if kind is BackupKind.INCREMENTAL:
        shutil.rmtree(location, ignore_errors=True)
        return
    # the stem (stamp and id) is the backup's own: its file, manifest and partial files
    for entry in location.parent.glob(location.name.split(".", 1)[0] + ".*"):
        entry.unlink(missing_ok=True)
