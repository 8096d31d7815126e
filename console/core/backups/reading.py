"""Reading a stored backup file back in one streaming pass.

:func:`open_stream` yields the plaintext of a stored file through a pipe (for a program's
stdin, or ``async for``), checking its size and sha256 while reading; a damaged file raises
:class:`BackupCorrupt` of kind ``missing-file``, ``truncated``, ``checksum-mismatch`` or
``wrong-key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import pyrage
import zstandard

from console.core.backups.pipeline import CHUNK, write_all
from console.core.errors import OperationFailed


class BackupCorrupt(OperationFailed):
    """A stored file is not what its catalog row says: ``kind`` is ``missing-file``,
    ``truncated``, ``checksum-mismatch`` or ``wrong-key``."""

    title = "Backup damaged"

    def __init__(self, kind: str, path: Path, detail: str) -> None:
        super().__init__(f"{kind}: {path}: {detail}")
        self.kind = kind
        self.path = path


@dataclass(frozen=True)
class Expected:
    """What a stored file must be: its size and sha256 (None: unknown), whether zstd and age
    were applied, and the identities to decrypt with (required when ``encrypted``)."""

    bytes: int | None
    sha256: str | None
    compressed: bool
    encrypted: bool
    identities: Sequence[pyrage.x25519.Identity] = ()


class _HashingReader:
    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _PipeOut:
    """Writes plaintext to the consumer's pipe; once the consumer has gone (it read what it
    needed, as ``pg_restore --list`` does), discards the rest so the whole file is still
    checked."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.count = 0
        self.gone = False

    def write(self, data: Any) -> int:
        self.count += len(data)
        if not self.gone:
            try:
                write_all(self._fd, bytes(data))
            except BrokenPipeError:
                self.gone = True
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


def _feed(path: Path, write_fd: int, expected: Expected) -> int:
    """Worker thread: the plaintext of ``path`` into ``write_fd`` (closed at the end); returns
    the plaintext bytes. Raises BackupCorrupt."""
    try:
        return _read_checked(path, _PipeOut(write_fd), expected)
    finally:
        os.close(write_fd)


def _read_checked(path: Path, out: _PipeOut, expected: Expected) -> int:
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except FileNotFoundError:
        raise BackupCorrupt("missing-file", path, "the file does not exist") from None
    if expected.bytes is not None and size < expected.bytes:
        fh.close()
        raise BackupCorrupt(
            "truncated", path, f"{size:,} bytes on disk, {expected.bytes:,} recorded"
        )
    with fh:
        source = _HashingReader(fh)
        sink: Any = out
        if expected.compressed:
            sink = zstandard.ZstdDecompressor().stream_writer(cast(Any, out), closefd=False)
        try:
            if expected.encrypted:
                pyrage.decrypt_io(source, sink, list(expected.identities))
            else:
                while chunk := source.read(CHUNK):
                    sink.write(chunk)
            sink.flush()
        except pyrage.DecryptError as exc:
            if "no matching keys" in str(exc).lower():
                raise BackupCorrupt(
                    "wrong-key", path, "none of the backup.identity_file keys can decrypt it"
                ) from None
            failure: BaseException | None = exc
        except (OSError, zstandard.ZstdError) as exc:
            failure = exc
        else:
            failure = None
        source.drain()
    digest = source.sha256.hexdigest()
    if expected.sha256 is not None and digest != expected.sha256:
        raise BackupCorrupt(
            "checksum-mismatch", path, f"sha256 {digest}, {expected.sha256} recorded"
        )
    if failure is not None:
        raise BackupCorrupt("checksum-mismatch", path, f"cannot be decoded: {failure}")
    return out.count


class PlainStream:
    """The plaintext of a stored file, readable once: hand :attr:`fd` to a program (then call
    :meth:`handed_over`) or ``async for chunk in stream``; :meth:`finish` says whether the file
    was intact."""

    def __init__(self, read_fd: int, worker: asyncio.Future[int]) -> None:
        self.fd = read_fd
        self._worker = worker
        self._open = True

    def handed_over(self) -> None:
        """The program has its copy of :attr:`fd`: close ours."""
        if self._open:
            self._open = False
            os.close(self.fd)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await asyncio.to_thread(os.read, self.fd, CHUNK):
            yield chunk

    async def finish(self) -> int:
        """Plaintext bytes; raises BackupCorrupt when the file was damaged."""
        self.handed_over()
        return await self._worker


@asynccontextmanager
async def open_stream(path: Path, expected: Expected) -> AsyncIterator[PlainStream]:
    """The plaintext of stored file ``path``, checked against ``expected`` while it streams
    (call ``finish()`` for the verdict)."""
    read_fd, write_fd = os.pipe()
    worker = asyncio.ensure_future(asyncio.to_thread(_feed, path, write_fd, expected))
    stream = PlainStream(read_fd, worker)
    try:
        yield stream
    finally:
        stream.handed_over()
        with suppress(Exception):
            await worker
