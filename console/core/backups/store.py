"""Per-tenant backups on disk, recorded in ``public.backups``.

This first cut makes full, custom-format ``pg_dump -n`` backups (compressed by pg_dump) with a
sha256, and verifies them (checksum re-read, ``pg_restore --list`` readable). Incremental
backups, encryption, retention and restore build on it later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec, Database
from console.core.errors import OperationFailed
from console.core.tenants.registry import Tenant

_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupRecord:
    """One finished backup."""

    id: uuid.UUID
    tenant_key: str
    kind: str
    location: Path
    bytes: int
    sha256: str
    started_at: datetime
    finished_at: datetime
    verified: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.id),
            "tenant": self.tenant_key,
            "kind": self.kind,
            "location": str(self.location),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "verified": self.verified,
        }


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def run_tool(args: list[str], env: dict[str, str]) -> str:
    """Run a PostgreSQL client program; return stdout or raise with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        name = Path(args[0]).name
        raise OperationFailed(f"{name} exited {proc.returncode}: {err.decode().strip()[-500:]}")
    return out.decode()


class BackupStore:
    """Writes backups under ``root/<tenant key>/`` and records them."""

    def __init__(
        self, db: Database, spec: ConnectionSpec, binaries: PgBinaries, root: Path
    ) -> None:
        self._db = db
        self._spec = spec
        self._binaries = binaries
        self.root = root

    def tenant_dir(self, key: str) -> Path:
        """Folder of one tenant's backups and exports (created 0700)."""
        path = self.root / key
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    async def full_backup(self, tenant: Tenant, reason: str) -> BackupRecord:
        """``pg_dump --format=custom --schema`` the tenant; record size and sha256."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.tenant_dir(tenant.key) / f"{stamp}-full.dump"
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO public.backups (tenant_id, kind, reason, location, compressed) "
                "VALUES ($1, 'full', $2, $3, true) RETURNING id, started_at",
                tenant.id,
                reason,
                str(path),
            )
        assert row is not None
        try:
            await run_tool(
                [
                    str(self._binaries.tool("pg_dump")),
                    "--format=custom",
                    "--schema",
                    tenant.schema_name,
                    "--file",
                    str(path),
                    "--dbname",
                    self._spec.conninfo,
                ],
                self._spec.libpq_env(),
            )
            digest = await asyncio.to_thread(sha256_of, path)
            size = path.stat().st_size
        except BaseException as exc:
            path.unlink(missing_ok=True)
            async with self._db.acquire() as conn:
                await conn.execute(
                    "UPDATE public.backups SET status = 'failed', finished_at = clock_timestamp(), "
                    "error = $2 WHERE id = $1",
                    row["id"],
                    str(exc)[:2000],
                )
            raise
        async with self._db.acquire() as conn:
            finished = await conn.fetchval(
                "UPDATE public.backups SET status = 'succeeded', finished_at = clock_timestamp(), "
                "bytes = $2, sha256 = $3, covers_until = started_at WHERE id = $1 "
                "RETURNING finished_at",
                row["id"],
                size,
                digest,
            )
        return BackupRecord(
            row["id"], tenant.key, "full", path, size, digest, row["started_at"], finished
        )

    async def verify(self, record: BackupRecord) -> BackupRecord:
        """Re-read the checksum and list the archive with pg_restore; record the verdict."""
        result = "ok"
        try:
            digest = await asyncio.to_thread(sha256_of, record.location)
            if digest != record.sha256:
                result = f"sha256 mismatch: recorded {record.sha256}, file has {digest}"
            else:
                listing = await run_tool(
                    [str(self._binaries.tool("pg_restore")), "--list", str(record.location)],
                    self._spec.libpq_env(),
                )
                if " TABLE " not in listing:
                    result = "pg_restore --list shows no tables"
        except (OSError, OperationFailed) as exc:
            result = f"unreadable: {exc}"
        async with self._db.acquire() as conn:
            await conn.execute(
                "UPDATE public.backups SET verified_at = clock_timestamp(), verify_result = $2 "
                "WHERE id = $1",
                record.id,
                result,
            )
        if result != "ok":
            raise OperationFailed(f"backup {record.location} failed verification: {result}")
        return BackupRecord(**{**record.__dict__, "verified": True})

    async def export_audit(self, conn: asyncpg.Connection, tenant: Tenant) -> tuple[Path, str]:
        """Write the tenant's whole audit log as JSON next to its backups; return path, sha256."""
        rows = await conn.fetch(
            "SELECT id, action_type, action_timestamp, actor, actor_host, actor_address, details "
            "FROM public.tenant_audit_log WHERE tenant_id = $1 ORDER BY action_timestamp, id",
            tenant.id,
        )
        entries = [
            {
                **dict(r),
                "id": str(r["id"]),
                "action_timestamp": r["action_timestamp"].isoformat(),
            }
            for r in rows
        ]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.tenant_dir(tenant.key) / f"{stamp}-audit.json"
        payload = {"tenant": tenant.as_json(), "entries": entries}
        await asyncio.to_thread(_write_private, path, json.dumps(payload, indent=2))
        return path, await asyncio.to_thread(sha256_of, path)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
