"""Running ``pg_restore`` on a custom-format archive read from a pipe, into a database.

Normally ``pg_restore --exit-on-error --dbname …``. A pg_restore of version 17 or later
starts every restore with ``SET transaction_timeout = 0``, which a server older than 17 rejects
(the parameter does not exist there), so with such a pair the archive is turned into a script
(``pg_restore --file -``), that one line is dropped from its header, and ``psql -v
ON_ERROR_STOP=1`` runs it. Either way the plaintext only goes through pipes, and a non-zero
exit or any ``ERROR`` on stderr is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.core.backups.pipeline import write_all
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec

TIMEOUT_SINCE = 17
_TIMEOUT_LINE = b"\nSET transaction_timeout = 0;\n"
_HEADER_BYTES = 1 << 16
_CHUNK = 1 << 17
_STDERR_TAIL = 600


@dataclass(frozen=True)
class RestoreRun:
    """How a restore ended: each program's exit status and what they wrote on stderr."""

    exits: dict[str, int]
    stderr: str

    @property
    def failed(self) -> bool:
        """A non-zero exit, or an ERROR reported (pg_restore without --exit-on-error, psql
        without ON_ERROR_STOP would exit 0 after one)."""
        return any(self.exits.values()) or "ERROR" in self.stderr

    def describe(self) -> str:
        """One line: the exits and the end of stderr."""
        exits = ", ".join(f"{name} exited {code}" for name, code in self.exits.items())
        return f"{exits}: {self.stderr.strip()[-_STDERR_TAIL:]}"


async def tool_major(binaries: PgBinaries, name: str) -> int:
    """The major version of PostgreSQL program ``name`` (from ``--version``)."""
    proc = await asyncio.create_subprocess_exec(
        str(binaries.tool(name)),
        "--version",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    match = re.search(rb"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


async def pg_restore(
    binaries: PgBinaries, target: ConnectionSpec, archive_fd: int, server_major: int
) -> RestoreRun:
    """Restore the archive readable on ``archive_fd`` into ``target`` (a server of major
    version ``server_major``); the caller closes its copy of the descriptor afterwards."""
    if server_major < TIMEOUT_SINCE <= await tool_major(binaries, "pg_restore"):
        return await _through_psql(binaries, target, archive_fd)
    proc = await asyncio.create_subprocess_exec(
        str(binaries.tool("pg_restore")),
        "--exit-on-error",
        "--dbname",
        target.conninfo,
        stdin=archive_fd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=target.libpq_env(),
    )
    _, err = await proc.communicate()
    return RestoreRun({"pg_restore": proc.returncode or 0}, err.decode(errors="replace"))


async def _through_psql(
    binaries: PgBinaries, target: ConnectionSpec, archive_fd: int
) -> RestoreRun:
    return await restore_script(binaries, target, archive_fd, _drop_timeout_line)


ScriptFilter = Callable[[int, int], None]


async def restore_script(
    binaries: PgBinaries,
    target: ConnectionSpec,
    archive_fd: int,
    script_filter: ScriptFilter,
    restore_args: Sequence[str] = (),
    psql_args: Sequence[str] = (),
) -> RestoreRun:
    """``pg_restore --file -`` of the archive on ``archive_fd`` (with ``restore_args``), its
    script passed through ``script_filter(source_fd, target_fd)`` (run in a worker thread; it
    closes both) into ``psql -v ON_ERROR_STOP=1`` (with ``psql_args``) on ``target``."""
    restore_tool, psql_tool = binaries.tool("pg_restore"), binaries.tool("psql")
    script_out, filter_in = os.pipe()
    psql_in, filter_out = os.pipe()
    try:
        script = await asyncio.create_subprocess_exec(
            str(restore_tool),
            *restore_args,
            "--file",
            "-",
            stdin=archive_fd,
            stdout=filter_in,
            stderr=asyncio.subprocess.PIPE,
        )
        psql = await asyncio.create_subprocess_exec(
            str(psql_tool),
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            *psql_args,
            "--dbname",
            target.conninfo,
            "--file",
            "-",
            stdin=psql_in,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=target.libpq_env(),
        )
    except BaseException:
        for fd in (script_out, filter_out):
            os.close(fd)
        raise
    finally:
        os.close(filter_in)
        os.close(psql_in)
    (_, script_err), (_, psql_err), _ = await asyncio.gather(
        script.communicate(),
        psql.communicate(),
        asyncio.to_thread(script_filter, script_out, filter_out),
    )
    return RestoreRun(
        {"pg_restore": script.returncode or 0, "psql": psql.returncode or 0},
        (script_err + psql_err).decode(errors="replace"),
    )


def _drop_timeout_line(source: int, target: int) -> None:
    """Worker thread: copy the script from ``source`` to ``target``, without the ``SET
    transaction_timeout`` line of its header; closes both. Stops early when psql has gone."""
    try:
        head = b""
        while len(head) < _HEADER_BYTES and (chunk := os.read(source, _CHUNK)):
            head += chunk
        write_all(target, head.replace(_TIMEOUT_LINE, b"\n", 1))
        while chunk := os.read(source, _CHUNK):
            write_all(target, chunk)
    except BrokenPipeError:
        pass  # psql stopped at an error: its stderr says which
    finally:
        os.close(source)
        os.close(target)
