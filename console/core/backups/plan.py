"""Which backup a tenant gets next: an incremental extending its newest chain, or a full, and
why a full when an incremental was possible to ask for.

An incremental's parent is the newest succeeded link of the tenant's newest chain. A full is
taken instead when no full exists, a full was asked for, the tree revision differs from the
parent's, tables lack change tracking, or the newest link failed, lacks a snapshot (the old
format) or has files missing, or a restore switched the schema since; a chain with a missing or
failed link is never extended.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from console.core.backups import catalog, manifest
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.tenants.registry import Tenant

CHANGE_COLUMN = "backup_xid"
# Audit actions of a restore's or rollback's switch: the live rows then come from elsewhere.
SWITCH_ACTIONS = ("restore.switch", "rollback.switch")


@dataclass(frozen=True)
class Plan:
    """The next backup of a tenant: its kind, its parent chain (full first; empty for a full)
    and, for a full, why (None when a full was simply asked for or is the first)."""

    kind: BackupKind
    chain: tuple[BackupRecord, ...]
    why_full: str | None = None

    @property
    def parent(self) -> BackupRecord | None:
        """The link an incremental extends."""
        return self.chain[-1] if self.chain else None


def missing_files(record: BackupRecord) -> list[Path]:
    """Files of a succeeded backup that are not on disk (its manifest included)."""
    if record.location is None:
        return []
    incremental = record.kind is BackupKind.INCREMENTAL
    wanted = [record.location, manifest.manifest_path(record.location, incremental)]
    if incremental and record.location.is_dir():
        try:
            listed = manifest.read(wanted[1])["files"]
        except Exception:
            return [wanted[1]]
        wanted += [record.location / f["name"] for f in listed]
    return [path for path in wanted if not path.exists()]


async def untracked_tables(conn: asyncpg.Connection, schema: str, tables: list[str]) -> list[str]:
    """Tables of ``schema`` without the change-tracking column an incremental selects on."""
    rows = await conn.fetch(
        "SELECT t.name FROM unnest($2::text[]) AS t(name) WHERE NOT EXISTS ("
        "SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, "
        "t.name)) AND a.attname = $3 AND NOT a.attisdropped)",
        schema,
        tables,
        CHANGE_COLUMN,
    )
    return [r[0] for r in rows]


async def plan_next(
    conn: asyncpg.Connection,
    tenant: Tenant,
    wanted: BackupKind | None,
    revision: str | None,
    untracked: list[str],
) -> Plan:
    """The backup to take now for ``tenant`` at tree ``revision``, given the kind ``wanted``
    (None: incremental when possible) and the tables without change tracking."""
    if wanted is BackupKind.FULL:
        return Plan(BackupKind.FULL, ())
    newest = next(
        (
            r
            for r in await catalog.history(conn, tenant.id, limit=20, include_expired=False)
            if r.status is not BackupStatus.RUNNING
        ),
        None,
    )
    if newest is None:
        return Plan(BackupKind.FULL, (), "no full backup yet")
    why = await _cannot_extend(conn, newest, revision, untracked)
    if why is not None:
        return Plan(BackupKind.FULL, (), why)
    return Plan(BackupKind.INCREMENTAL, tuple(await catalog.chain(conn, newest.id)))


async def _cannot_extend(
    conn: asyncpg.Connection, newest: BackupRecord, revision: str | None, untracked: list[str]
) -> str | None:
    short = str(newest.id)[:8]
    if newest.status is not BackupStatus.SUCCEEDED:
        return f"the newest backup {short} {newest.status}: its chain is not extended"
    if newest.snapshot is None:
        return f"the newest backup {short} has no snapshot (older format)"
    if newest.tree_revision != revision:
        return f"the tree revision changed from {newest.tree_revision} to {revision}"
    if untracked:
        return f"tables without change tracking: {', '.join(untracked)}"
    switched = await conn.fetchval(
        "SELECT max(action_timestamp) FROM public.tenant_audit_log WHERE tenant_id = $1 "
        "AND action_type = ANY($2::text[])",
        newest.tenant_id,
        list(SWITCH_ACTIONS),
    )
    if switched is not None and switched > newest.started_at:
        return f"a restore switched the schema after backup {short}: its chain is not extended"
    for link in await catalog.chain(conn, newest.id):
        if link.status is not BackupStatus.SUCCEEDED:
            return f"backup {str(link.id)[:8]} of the newest chain is {link.status}"
        gone = missing_files(link)
        if gone:
            return f"files of backup {str(link.id)[:8]} are missing ({gone[0]})"
    return None
