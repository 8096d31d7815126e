"""The backup catalog (``public.backups``): typed rows and the reads every front end shares.

A backup is a *full* (a ``pg_dump`` of the tenant schema) or an *incremental* (the rows and
deletions its parent's snapshot did not see). A chain is a full followed by incrementals, each
naming the previous link as ``parent_id``. Writes (start, finish, fail, verify, expire) live with
the code that does the work; this module only defines the row and reads it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg


class BackupKind(enum.StrEnum):
    """What a backup holds."""

    FULL = "full"
    INCREMENTAL = "incremental"


class BackupStatus(enum.StrEnum):
    """Where a backup stands; ``expired``: retention removed its files, the row is history."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


COLUMNS = (
    "b.id, b.tenant_id, t.key AS tenant_key, b.kind, b.parent_id, b.reason, b.status, "
    "b.started_at, b.finished_at, b.bytes, b.raw_bytes, b.sha256, b.location, b.encrypted, "
    "b.compressed, b.covers_until, b.snapshot, b.lsn::text AS lsn, b.server_version, "
    "b.tree_revision, b.duration_ms, b.recipients, b.verified_at, b.verify_result, "
    "b.verify_level, b.error, b.expired_at"
)
FROM = "public.backups b JOIN public.tenants t ON t.id = b.tenant_id"


@dataclass(frozen=True)
class BackupRecord:
    """One row of the catalog (the manifest itself is read on demand: :func:`manifest_of`)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_key: str
    kind: BackupKind
    parent_id: uuid.UUID | None
    reason: str
    status: BackupStatus
    started_at: datetime
    finished_at: datetime | None
    bytes: int | None
    raw_bytes: int | None
    sha256: str | None
    location: Path | None
    encrypted: bool
    compressed: bool
    covers_until: datetime | None
    snapshot: str | None
    lsn: str | None
    server_version: str | None
    tree_revision: str | None
    duration_ms: float | None
    recipients: tuple[str, ...]
    verified_at: datetime | None
    verify_result: str | None
    verify_level: str | None
    error: str | None
    expired_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> BackupRecord:
        """Build from a row selected with :data:`COLUMNS` from :data:`FROM`."""
        values = dict(row)
        values["kind"] = BackupKind(row["kind"])
        values["status"] = BackupStatus(row["status"])
        values["location"] = Path(row["location"]) if row["location"] else None
        values["sha256"] = row["sha256"].strip() if row["sha256"] else None
        values["recipients"] = tuple(row["recipients"] or ())
        return cls(**values)

    @property
    def verified(self) -> bool:
        """Whether the last verification passed."""
        return self.verify_result == "ok"

    @property
    def compression_ratio(self) -> float | None:
        """Bytes before compression over bytes stored (None when either is unknown)."""
        if not self.bytes or self.raw_bytes is None:
            return None
        return self.raw_bytes / self.bytes

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (timestamps ISO 8601, ids as strings)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": str(self.id),
            "tenant": self.tenant_key,
            "kind": self.kind.value,
            "parent": str(self.parent_id) if self.parent_id else None,
            "reason": self.reason,
            "status": self.status.value,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "covers_until": iso(self.covers_until),
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
            "sha256": self.sha256,
            "location": str(self.location) if self.location else None,
            "encrypted": self.encrypted,
            "compressed": self.compressed,
            "snapshot": self.snapshot,
            "lsn": self.lsn,
            "server_version": self.server_version,
            "tree_revision": self.tree_revision,
            "duration_ms": self.duration_ms,
            "recipients": list(self.recipients),
            "verified_at": iso(self.verified_at),
            "verify_result": self.verify_result,
            "verify_level": self.verify_level,
            "error": self.error,
            "expired_at": iso(self.expired_at),
        }


async def get(conn: asyncpg.Connection, backup_id: uuid.UUID) -> BackupRecord | None:
    """One backup by id, or None."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id = $1", backup_id)
    return BackupRecord.from_row(row) if row else None


async def history(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID | None = None,
    limit: int | None = None,
    include_expired: bool = True,
) -> list[BackupRecord]:
    """Backups newest first: one tenant's (``tenant_id``) or everyone's."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {FROM} "
        "WHERE ($1::uuid IS NULL OR b.tenant_id = $1) AND ($2 OR b.status <> 'expired') "
        "ORDER BY b.started_at DESC, b.id LIMIT $3",
        tenant_id,
        include_expired,
        limit,
    )
    return [BackupRecord.from_row(r) for r in rows]


async def chain(conn: asyncpg.Connection, backup_id: uuid.UUID) -> list[BackupRecord]:
    """The chain ending at ``backup_id``: its full first, then each incremental in order
    (empty when the id is unknown)."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE links AS (
            SELECT id, parent_id, 0 AS depth FROM public.backups WHERE id = $1
            UNION ALL
            SELECT p.id, p.parent_id, l.depth + 1
            FROM public.backups p JOIN links l ON p.id = l.parent_id
        )
        SELECT {COLUMNS} FROM links JOIN {FROM} ON b.id = links.id ORDER BY links.depth DESC
        """,
        backup_id,
    )
    return [BackupRecord.from_row(r) for r in rows]


async def manifest_of(conn: asyncpg.Connection, backup_id: uuid.UUID) -> dict[str, Any] | None:
    """The manifest recorded with a backup (None for a running, failed or legacy backup)."""
    value: dict[str, Any] | None = await conn.fetchval(
        "SELECT manifest FROM public.backups WHERE id = $1", backup_id
    )
    return value
