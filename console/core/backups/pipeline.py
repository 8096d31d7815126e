"""Writing a stored backup file in one streaming pass (reading it back: :mod:`.reading`).

A producer (``pg_dump``'s stdout, or COPY rows) writes plaintext into a pipe; a worker
thread reads it, compresses it (zstd), encrypts it (age), hashes and counts what it stores, and
writes it to ``<name>.partial``; at the end the file is fsynced, renamed to its name and the
directory fsynced. No plaintext touches the disk and memory stays bounded (the pipe, one zstd
window, one age chunk) whatever the size of the tenant.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage
import zstandard

from console.core.backups.keys import Recipients
from console.core.errors import OperationFailed

CHUNK = 1 << 17
PARTIAL = ".partial"

Opener = Callable[[Path], int]
ByteCounter = Callable[[int], None]


def open_new(path: Path) -> int:
    """Create ``path`` for writing, owner-only (0600); fails if it exists."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) created owner-only (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Stages:
    """What a stored file goes through: zstd at ``compression_level`` (None: no compression),
    age to ``recipients`` (None: no encryption)."""

    compression_level: int | None
    recipients: Recipients | None

    @property
    def suffix(self) -> str:
        """What the stages add to a file name: ``.zst``, ``.age``, both or nothing."""
        return (".zst" if self.compression_level else "") + (".age" if self.recipients else "")


@dataclass(frozen=True)
class StoredFile:
    """A file written by the pipeline: plaintext bytes in, bytes stored, sha256 of those."""

    path: Path
    raw_bytes: int
    bytes: int
    sha256: str


class _CountingReader:
    """A reader that counts (and reports) the bytes read through it."""

    def __init__(self, source: BinaryIO, on_bytes: ByteCounter | None) -> None:
        self._source = source
        self._on_bytes = on_bytes
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        if self._on_bytes is not None and data:
            self._on_bytes(len(data))
        return data


class _HashingWriter:
    """Writes everything to a file descriptor, hashing and counting it; keeps the first OSError
    (the encryptor reports only its text)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.sha256 = hashlib.sha256()
        self.count = 0
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.error = self.error or exc
            raise
        self.sha256.update(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


def _store(
    read_fd: int, partial: Path, stages: Stages, opener: Opener, on_bytes: ByteCounter | None
) -> tuple[int, int, str]:
    """Worker thread: plaintext from ``read_fd`` -> zstd -> age -> ``partial``, fsynced.
    Returns (plaintext bytes, stored bytes, sha256)."""
    with open(read_fd, "rb") as source:
        counting: Any = _CountingReader(source, on_bytes)
        reader: Any = counting
        if stages.compression_level:
            compressor = zstandard.ZstdCompressor(level=stages.compression_level)
            reader = compressor.stream_reader(counting, read_size=CHUNK, closefd=False)
        fd = opener(partial)
        try:
            out = _HashingWriter(fd)
            try:
                if stages.recipients is not None:
                    pyrage.encrypt_io(reader, out, list(stages.recipients.keys))
                else:
                    while chunk := reader.read(CHUNK):
                        out.write(chunk)
            except pyrage.EncryptError:
                if out.error is not None:
                    raise out.error from None
                raise
            os.fsync(fd)
        finally:
            os.close(fd)
    return counting.count, out.count, out.sha256.hexdigest()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def describe_os_error(exc: BaseException) -> str:
    """``strerror (errno NAME)`` for an OSError, else the exception's text."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc) or type(exc).__name__


class StreamingFile:
    """One file being written: the producer writes plaintext to :attr:`fd` (hand it to a
    program as its stdout) or through :meth:`write`, then calls :meth:`finish`."""

    def __init__(
        self, path: Path, stages: Stages, opener: Opener, on_bytes: ByteCounter | None
    ) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL)
        read_fd, self.fd = os.pipe()
        self._open = True
        self._worker = asyncio.ensure_future(
            asyncio.to_thread(_store, read_fd, self.partial, stages, opener, on_bytes)
        )
        self.stored: StoredFile | None = None

    async def write(self, data: bytes) -> None:
        """Feed plaintext (from a coroutine producer such as a COPY)."""
        await asyncio.to_thread(write_all, self.fd, data)

    def end_input(self) -> None:
        """No more plaintext: the worker sees end of file."""
        if self._open:
            self._open = False
            os.close(self.fd)

    async def finish(self) -> StoredFile:
        """End the input, wait for the worker, rename the partial file and fsync the folder."""
        self.end_input()
        raw, size, digest = await self._worker
        await asyncio.to_thread(_publish, self.partial, self.path)
        self.stored = StoredFile(self.path, raw, size, digest)
        return self.stored

    async def abort(self) -> BaseException | None:
        """Stop, remove the partial file; returns the worker's own failure (such as ENOSPC),
        which explains the producer's (a broken pipe) better."""
        self.end_input()
        failure: BaseException | None = None
        try:
            await self._worker
        except Exception as exc:
            failure = exc
        self.partial.unlink(missing_ok=True)
        return failure


def _publish(partial: Path, path: Path) -> None:
    partial.rename(path)
    fsync_dir(path.parent)


@asynccontextmanager
async def writing(
    path: Path,
    stages: Stages,
    *,
    opener: Opener = open_new,
    on_bytes: ByteCounter | None = None,
) -> AsyncIterator[StreamingFile]:
    """A :class:`StreamingFile` for ``path``; call its ``finish()`` inside the block. If the
    block fails (or never finishes), the partial file is removed and the storing side's own
    failure, when it has one, is what is raised (the producer's error chained to it)."""
    out = StreamingFile(path, stages, opener, on_bytes)
    try:
        yield out
        if out.stored is None:
            raise RuntimeError(f"{path.name}: the writer was not finished")
    except BaseException as exc:
        failure = await out.abort()
        if failure is not None and isinstance(exc, Exception):
            raise OperationFailed(
                f"writing {out.partial} failed: {describe_os_error(failure)}"
            ) from exc
        raise


def write_small(path: Path, data: bytes, opener: Opener = open_new) -> None:
    """Write a small file (a manifest) the same durable way: ``.partial``, fsync, rename,
    fsync the folder."""
    partial = path.with_name(path.name + PARTIAL)
    fd = opener(partial)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
