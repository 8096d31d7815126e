"""What offboarding leaves next to a tenant's backups besides them: the audit log export (and
the report the lifecycle writes)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from console.core.backups.pipeline import open_new, private_dir, sha256_of, write_small
from console.core.tenants.registry import Tenant


def tenant_dir(root: Path, key: str) -> Path:
    """Folder of one tenant's backups and exports under ``root`` (created 0700)."""
    return private_dir(root / key)


async def export_audit(conn: asyncpg.Connection, root: Path, tenant: Tenant) -> tuple[Path, str]:
    """Write the tenant's whole audit log as JSON (0600) in its folder; return path, sha256."""
    rows = await conn.fetch(
        "SELECT id, action_type, action_timestamp, actor, actor_host, actor_address, details "
        "FROM public.tenant_audit_log WHERE tenant_id = $1 ORDER BY action_timestamp, id",
        tenant.id,
    )
    entries = [
        {**dict(r), "id": str(r["id"]), "action_timestamp": r["action_timestamp"].isoformat()}
        for r in rows
    ]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = tenant_dir(root, tenant.key) / f"{stamp}-audit.json"
    payload = {"tenant": tenant.as_json(), "entries": entries}
    text = json.dumps(payload, indent=2, default=str).encode()
    await asyncio.to_thread(write_small, path, text, open_new)
    return path, await asyncio.to_thread(sha256_of, path)
