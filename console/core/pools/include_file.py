"""The include file of tenant aliases that goconsole manages and pgbouncer.ini ``%include``s.

The file holds a ``[databases]`` section with one line per tenant::

    tenant_acme = host=10.0.0.5 port=5432 dbname=gocommerce pool_size=20 reserve_pool=5

Every change is a read-modify-write under an exclusive ``flock`` (two consoles never interleave),
written to a temporary file in the same folder, fsynced and renamed over the old one; the
previous version is kept as ``<file>.prev``. PgBouncer reads it on ``RELOAD``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.core.errors import ConfigError, OperationFailed
from console.core.identifiers import pgbouncer_name

HEADER = (
    "; Tenant aliases managed by goconsole: edits here are overwritten.\n"
    "; pgbouncer.ini includes this file with: %include {path}\n"
    "[databases]\n"
)
_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")
_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]+$")


@dataclass(frozen=True)
class Alias:
    """One ``[databases]`` line: alias name -> backend and pool limits."""

    name: str
    host: str
    port: int
    dbname: str
    pool_size: int
    reserve_pool: int

    def line(self) -> str:
        """The config line (values are checked: no quoting needed or possible)."""
        for value in (self.host, self.dbname):
            if not _VALUE.fullmatch(value):
                raise ConfigError(
                    f"PgBouncer alias {self.name}: {value!r} cannot be written to the include "
                    "file (letters, digits and . _ : / - only)"
                )
        return (
            f"{pgbouncer_name(self.name)} = host={self.host} port={self.port} "
            f"dbname={self.dbname} pool_size={self.pool_size} reserve_pool={self.reserve_pool}"
        )


def parse_alias(name: str, text: str) -> Alias:
    """An Alias from the right-hand side of a line; unknown keys are refused."""
    fields: dict[str, str] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"alias {name}: cannot read {item!r} (expected key=value)")
        fields[key] = value
    unknown = set(fields) - {"host", "port", "dbname", "pool_size", "reserve_pool"}
    if unknown:
        raise ConfigError(f"alias {name}: unexpected setting(s) {', '.join(sorted(unknown))}")
    try:
        return Alias(
            name,
            fields.get("host", ""),
            int(fields.get("port", "5432")),
            fields.get("dbname", ""),
            int(fields.get("pool_size", "0")),
            int(fields.get("reserve_pool", "0")),
        )
    except ValueError:
        raise ConfigError(
            f"alias {name}: port, pool_size and reserve_pool must be numbers"
        ) from None


class IncludeFile:
    """Reads and atomically rewrites the managed include file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def previous(self) -> Path:
        """Where the version before the last change is kept."""
        return self.path.with_name(self.path.name + ".prev")

    def read(self) -> dict[str, Alias]:
        """Aliases by name (empty when the file does not exist yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise OperationFailed(f"cannot read {self.path}: {exc.strerror}") from None
        aliases: dict[str, Alias] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith((";", "#")) or line == "[databases]":
                continue
            match = _LINE.match(line)
            if match is None:
                raise ConfigError(f"{self.path}:{number}: cannot read {line!r}")
            try:
                aliases[match[1]] = parse_alias(match[1], match[2])
            except ConfigError as exc:
                raise ConfigError(f"{self.path}:{number}: {exc.message}") from None
        return aliases

    @contextmanager
    def editing(self) -> Iterator[dict[str, Alias]]:
        """Yield the aliases to change in place; written back atomically on success."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise OperationFailed(f"cannot lock {self.path}: {exc.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            aliases = self.read()
            before = dict(aliases)
            yield aliases
            if aliases != before:
                self._write(aliases)

    def _write(self, aliases: dict[str, Alias]) -> None:
        body = HEADER.format(path=self.path) + "".join(
            aliases[name].line() + "\n" for name in sorted(aliases)
        )
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)  # PgBouncer runs as another OS user
            if self.path.exists():
                shutil.copy2(self.path, self.previous)
            os.replace(tmp, self.path)  # readers see the old file or the new one, never none
            tmp = None
        except OSError as exc:
            raise OperationFailed(f"cannot write {self.path}: {exc.strerror}") from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
