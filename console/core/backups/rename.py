"""Restoring a full backup under another schema name.

``pg_restore`` cannot rename a schema, so the archive is turned into a script (``pg_restore
--no-acl --file -``: no grants, so the application role reaches nothing), the script is passed
through :class:`SchemaRenamer` and run by ``psql -v ON_ERROR_STOP=1 --single-transaction`` (a
failure leaves nothing behind). The renamer rewrites the schema name as a whole word on every
line outside ``COPY … FROM stdin`` data, whose rows pass through untouched (a customer named
after the schema stays so). Tenant function bodies name no schema (the tenant tree's rule), so
the rename covers every reference. Plaintext only goes through pipes.
"""

from __future__ import annotations

import os
import re

from console.core.backups.pgrestore import TIMEOUT_SINCE, RestoreRun, restore_script
from console.core.backups.pipeline import CHUNK, write_all
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec

_TIMEOUT_LINE = b"SET transaction_timeout = 0;\n"
_COPY_END = b"\\.\n"


class SchemaRenamer:
    """A streaming rewrite of a ``pg_restore`` script from schema ``old`` to ``new``."""

    def __init__(self, old: str, new: str, drop_timeout: bool) -> None:
        self._pattern = re.compile(rb"\b" + re.escape(old.encode()) + rb"\b")
        self._new = new.encode()
        self._drop_timeout = drop_timeout
        self._in_copy = False
        self._rest = b""

    def feed(self, chunk: bytes) -> bytes:
        """The rewritten text of every complete line so far."""
        data = self._rest + chunk
        out: list[bytes] = []
        pos = 0
        while True:
            if self._in_copy:
                if data.startswith(_COPY_END, pos):
                    out.append(_COPY_END)
                    pos += len(_COPY_END)
                    self._in_copy = False
                    continue
                end = data.find(b"\n" + _COPY_END, pos)
                if end >= 0:
                    out.append(data[pos : end + 1])
                    pos = end + 1
                    continue
                cut = data.rfind(b"\n", pos)
                if cut >= 0:
                    out.append(data[pos : cut + 1])
                    pos = cut + 1
                break
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            out.append(self._line(data[pos : nl + 1]))
            pos = nl + 1
        self._rest = data[pos:]
        return b"".join(out)

    def finish(self) -> bytes:
        """What is left (a last line without a newline)."""
        rest, self._rest = self._rest, b""
        return rest if self._in_copy else self._line(rest)

    def _line(self, line: bytes) -> bytes:
        if self._drop_timeout and line == _TIMEOUT_LINE:
            return b""
        line = self._pattern.sub(self._new, line)
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            self._in_copy = True
        return line


def _pump(renamer: SchemaRenamer, source: int, target: int) -> None:
    """Worker thread: ``source`` through ``renamer`` into ``target``; closes both. Stops early
    when psql has gone (its stderr says why)."""
    try:
        while chunk := os.read(source, CHUNK):
            write_all(target, renamer.feed(chunk))
        write_all(target, renamer.finish())
    except BrokenPipeError:
        pass
    finally:
        os.close(source)
        os.close(target)


async def restore_renamed(
    binaries: PgBinaries,
    target: ConnectionSpec,
    archive_fd: int,
    old: str,
    new: str,
    server_major: int,
) -> RestoreRun:
    """Restore the custom-format archive on ``archive_fd`` (holding schema ``old``) into
    ``target`` as schema ``new``, in one transaction, without grants."""
    renamer = SchemaRenamer(old, new, server_major < TIMEOUT_SINCE)
    return await restore_script(
        binaries,
        target,
        archive_fd,
        lambda source, out: _pump(renamer, source, out),
        restore_args=("--no-acl",),
        psql_args=("--single-transaction",),
    )
