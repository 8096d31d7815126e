"""The checksum-level check of a stored backup: every file re-read (size, sha256), decrypted and
decompressed; a full's archive lists every table of its manifest (``pg_restore --list`` reading
the stream), an incremental's files hold as many COPY rows as its manifest says.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg

from console.config import BackupSettings
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.keys import load_identities
from console.core.backups.manifest import FileEntry, combined_sha256
from console.core.backups.reading import BackupCorrupt, Expected, open_stream
from console.core.binaries import PgBinaries
from console.core.errors import OperationFailed

STDERR_SHOWN = 500


async def check_stored(
    record: BackupRecord,
    manifest: dict[str, Any],
    settings: BackupSettings,
    binaries: PgBinaries,
) -> None:
    """Raise BackupCorrupt (a damaged file: its kind names how) or OperationFailed (the
    content is not what the manifest lists) unless every file of ``record`` checks out."""
    if record.location is None:
        raise OperationFailed(f"backup {record.id} has no location")
    identities = load_identities(settings) if record.encrypted else ()
    files = manifest["files"]
    if record.kind is BackupKind.FULL:
        entry = files[0]
        expected = Expected(
            entry["bytes"], entry["sha256"], record.compressed, record.encrypted, identities
        )
        listing = await _list_archive(record, expected, binaries)
        schema = manifest["tenant"]["schema"]
        missing = [
            table
            for table in manifest["tables"]
            if not re.search(rf" TABLE {re.escape(schema)} {re.escape(table)} ", listing)
        ]
        if missing:
            raise OperationFailed(
                f"{record.location}: pg_restore --list does not show table(s) "
                f"{', '.join(missing)} of the manifest"
            )
        return
    entries = [FileEntry(**f) for f in files]
    if record.sha256 is not None and combined_sha256(entries) != record.sha256:
        raise BackupCorrupt(
            "checksum-mismatch", record.location, "the manifest's files do not match the catalog"
        )
    for entry in entries:
        expected = Expected(
            entry.bytes, entry.sha256, record.compressed, record.encrypted, identities
        )
        rows = 0
        async with open_stream(record.location / entry.name, expected) as stream:
            async for chunk in stream:
                rows += chunk.count(b"\n")
            await stream.finish()
        assert entry.table is not None
        wanted = manifest["tables"][entry.table]["changed_rows"]
        if rows != wanted:
            raise OperationFailed(
                f"{record.location / entry.name}: {rows} COPY row(s), the manifest says {wanted}"
            )


async def _list_archive(record: BackupRecord, expected: Expected, binaries: PgBinaries) -> str:
    """``pg_restore --list`` of a full's archive, fed from the checked stream."""
    assert record.location is not None
    async with open_stream(record.location, expected) as stream:
        proc = await asyncio.create_subprocess_exec(
            str(binaries.tool("pg_restore")),
            "--list",
            stdin=stream.fd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stream.handed_over()
        out, err = await proc.communicate()
        await stream.finish()  # a damaged file explains a failed listing: its error first
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip()[-STDERR_SHOWN:]
        raise OperationFailed(
            f"{record.location}: pg_restore --list exited {proc.returncode}: {text}"
        )
    return out.decode(errors="replace")


async def record_check(conn: asyncpg.Connection, backup_id: Any, level: str, result: str) -> None:
    """Record a verification of ``level`` (``checksum`` or ``restore``) and its ``result``
    (``ok`` or the failure) on the catalog row."""
    await conn.execute(
        "UPDATE public.backups SET verified_at = clock_timestamp(), verify_result = $2, "
        "verify_level = $3 WHERE id = $1",
        backup_id,
        result,
        level,
    )
