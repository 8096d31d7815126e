"""The manifest of a backup: what it covers and how to read it back, as JSON beside its files
(and in ``public.backups.manifest``). Format 1; the keys are described in the README's Backups
section.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import zstandard

from console.core.errors import OperationFailed

FORMAT = 1
FULL_CONTENT = "pg_dump-custom"
COPY_CONTENT = "copy-text"
INCREMENTAL_MANIFEST = "manifest.json"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class FileEntry:
    """One stored file of a backup."""

    name: str
    table: str | None
    content: str
    raw_bytes: int
    bytes: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """The manifest's ``files`` entry."""
        return {
            "name": self.name,
            "table": self.table,
            "content": self.content,
            "raw_bytes": self.raw_bytes,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


def combined_sha256(files: Sequence[FileEntry]) -> str:
    """An incremental's sha256: of one ``"<sha256>  <name>\\n"`` line per file, by name (what
    ``sha256sum`` prints, so ``sha256sum -c`` can check the files)."""
    text = "".join(f"{f.sha256}  {f.name}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_path(location: Path, incremental: bool) -> Path:
    """Where the manifest of the backup stored at ``location`` is: ``manifest.json`` in an
    incremental's folder, ``<stamp>-full-<id>.manifest.json`` beside a full's file."""
    if incremental:
        return location / INCREMENTAL_MANIFEST
    return location.with_name(location.name.split(".", 1)[0] + MANIFEST_SUFFIX)


def tool_versions(pg_dump: str) -> dict[str, str]:
    """Versions of what wrote a backup (``pg_dump``: its ``--version`` line)."""

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {
        "goconsole": installed("goconsole"),
        "pg_dump": pg_dump,
        "zstandard": zstandard.__version__,
        "pyrage": installed("pyrage"),
    }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a timestamp (None stays None)."""
    return value.isoformat() if value else None


def build(
    *,
    backup_id: str,
    tenant: dict[str, str],
    kind: str,
    parent: str | None,
    chain: Sequence[str],
    facts: dict[str, Any],
    reason: str,
    tables: dict[str, dict[str, Any]],
    columns: dict[str, list[str]] | None,
    files: Sequence[FileEntry],
    compression_level: int | None,
    recipients: Sequence[str] | None,
    tools: dict[str, str],
) -> dict[str, Any]:
    """The manifest of one backup. ``facts``: snapshot, lsn, covers_until, started_at,
    finished_at, duration_ms, server_version, tree_revision; ``recipients``: fingerprints
    (None: not encrypted)."""
    single = kind == "full" and len(files) == 1
    return {
        "format": FORMAT,
        "id": backup_id,
        "tenant": tenant,
        "kind": kind,
        "parent": parent,
        "chain": list(chain),
        "snapshot": facts["snapshot"],
        "lsn": facts["lsn"],
        "covers_until": iso(facts["covers_until"]),
        "started_at": iso(facts["started_at"]),
        "finished_at": iso(facts["finished_at"]),
        "duration_ms": facts["duration_ms"],
        "server_version": facts["server_version"],
        "tree_revision": facts["tree_revision"],
        "reason": reason,
        "tables": tables,
        **({"columns": columns} if columns is not None else {}),
        "files": [f.as_json() for f in files],
        "compression": (
            {"algorithm": "zstd", "level": compression_level} if compression_level else None
        ),
        "encryption": (
            {"algorithm": "age-x25519", "recipients": list(recipients)}
            if recipients is not None
            else None
        ),
        "bytes": sum(f.bytes for f in files),
        "raw_bytes": sum(f.raw_bytes for f in files),
        "sha256": files[0].sha256 if single else combined_sha256(files),
        "tools": tools,
    }


def to_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as the JSON text stored beside the backup."""
    return (json.dumps(manifest, indent=2) + "\n").encode()


def read(path: Path) -> dict[str, Any]:
    """Parse a stored manifest; OperationFailed names the file when it is missing, not JSON
    or of an unknown format."""
    try:
        manifest = json.loads(path.read_bytes())
    except OSError as exc:
        raise OperationFailed(f"manifest {path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise OperationFailed(f"manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OperationFailed(f"manifest {path} is not a goconsole backup manifest (format 1)")
    return manifest
