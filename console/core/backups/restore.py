"""Restoring a backup chain into a database, checking every link against its manifest.

The full is streamed (decrypted, decompressed, its sha256 checked on the way) into
``pg_restore --exit-on-error`` on its stdin (:mod:`console.core.backups.pgrestore`): no
plaintext touches the disk, and pg_restore exiting non-zero or writing any ``ERROR`` fails the
restore. Each incremental is then applied in
one transaction with the tenant's user triggers disabled (rows keep their ``backup_xid`` and no
deletion is logged twice): every file is COPYed into a temporary table, the rows the link's
``deletion_log`` rows name are deleted (children first), the changed rows upserted (parents
first) and the ``deletion_log`` rows inserted. After the full, each table's row count and digest
must equal the manifest's; after each incremental, each table's row count, and the digest of the
rows the link holds (:func:`~console.core.backups.digest.digest_sql`), before it commits.

The target is any database the console can reach (a scratch database for a restore test,
:mod:`console.core.backups.scratch`; a restore target later).
"""

from __future__ import annotations

import graphlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pyrage

from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.digest import TableDigest, digest_sql, schema_digests, tenant_tables
from console.core.backups.pgrestore import RestoreRun, pg_restore
from console.core.backups.reading import Expected, open_stream
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec
from console.core.errors import OperationFailed
from console.core.identifiers import qualified, quote_ident
from console.core.operations import describe_error

DELETION_LOG = "deletion_log"
# Restores a full's plaintext archive read from a file descriptor, given the server's major.
FullRestore = Callable[[int, int], Awaitable[RestoreRun]]


class RestoreFailed(OperationFailed):
    """A chain did not restore to what its manifests say: ``kind`` is ``restore-error`` (the
    restore itself failed) or ``digest-mismatch`` (it restored other data)."""

    title = "Restore failed"

    def __init__(self, kind: str, backup_id: uuid.UUID, detail: str) -> None:
        super().__init__(f"{kind}: backup {backup_id}: {detail}")
        self.kind = kind
        self.backup_id = backup_id


@dataclass(frozen=True)
class Link:
    """One backup of a chain with its manifest; ``into``: the schema it is applied to when
    not the one it was taken from (a restore's recovery schema)."""

    record: BackupRecord
    manifest: dict[str, Any]
    into: str | None = None

    @property
    def schema(self) -> str:
        """The schema the backup is restored into: :attr:`into`, else the one it holds."""
        return self.into or str(self.manifest["tenant"]["schema"])

    @property
    def tenant_id(self) -> str:
        """The tenant id (the row-level-security policies compare it)."""
        return str(self.manifest["tenant"]["id"])

    def expected(self, entry: dict[str, Any], identities: Sequence[Any]) -> Expected:
        """What the stored file of manifest ``files`` entry must be."""
        return Expected(
            entry["bytes"],
            entry["sha256"],
            self.record.compressed,
            self.record.encrypted,
            identities,
        )


@dataclass
class LinkTiming:
    """How long restoring and checking one link took, and how much it held."""

    backup_id: uuid.UUID
    kind: BackupKind
    raw_bytes: int
    restore_ms: float
    check_ms: float

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.backup_id),
            "kind": self.kind.value,
            "raw_bytes": self.raw_bytes,
            "restore_ms": round(self.restore_ms, 1),
            "check_ms": round(self.check_ms, 1),
        }


@dataclass
class ChainRestore:
    """The links restored so far, each with its timing."""

    links: list[LinkTiming] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        """Restore and check time of every link."""
        return sum(t.restore_ms + t.check_ms for t in self.links)


LinkDone = Callable[[LinkTiming], None]


class ChainRestorer:
    """Restores chains with the configured PostgreSQL programs and age identities."""

    def __init__(self, binaries: PgBinaries, identities: Sequence[pyrage.x25519.Identity]):
        self._binaries = binaries
        self._identities = list(identities)

    @property
    def identities(self) -> list[pyrage.x25519.Identity]:
        """The age identities the backups are decrypted with."""
        return self._identities

    async def restore_chain(
        self, target: ConnectionSpec, chain: Sequence[Link], on_link: LinkDone | None = None
    ) -> ChainRestore:
        """Restore ``chain`` (its full first) into the database of ``target``, checking each
        link; RestoreFailed or BackupCorrupt at the first link that does not check out."""
        if not chain or chain[0].record.kind is not BackupKind.FULL:
            raise OperationFailed("a chain to restore starts with a full backup")
        done = ChainRestore()
        conn: asyncpg.Connection | None = None
        try:
            for link in chain:
                with _as_restore_error(link):
                    if link is chain[0]:
                        timing = await self.restore_full(target, link)
                    else:
                        conn = conn or await asyncpg.connect(**target.asyncpg_kwargs())
                        timing = await self.apply_incremental(conn, link)
                done.links.append(timing)
                if on_link:
                    on_link(timing)
        finally:
            if conn is not None:
                await conn.close()
        return done

    async def restore_full(
        self, target: ConnectionSpec, link: Link, runner: FullRestore | None = None
    ) -> LinkTiming:
        """Restore the full of ``link`` into ``target`` (``runner``: how the plaintext archive
        on a file descriptor becomes a schema; default ``pg_restore`` as it is), then check
        every table against the manifest."""
        (entry,) = link.manifest["files"]
        assert link.record.location is not None
        started = time.perf_counter()
        conn = await asyncpg.connect(**target.asyncpg_kwargs())
        try:
            server_major = conn.get_server_version().major
            expected = link.expected(entry, self._identities)
            async with open_stream(link.record.location, expected) as stream:
                if runner is None:
                    run = await pg_restore(self._binaries, target, stream.fd, server_major)
                else:
                    run = await runner(stream.fd, server_major)
                raw = await stream.finish()  # a damaged file explains a failed restore best
            if run.failed:
                raise RestoreFailed("restore-error", link.record.id, run.describe())
            restored = time.perf_counter()
            await see_tenant_rows(conn, link, local=False)
            tables = link.manifest["tables"]
            found = await schema_digests(conn, link.schema, list(tables))
        finally:
            await conn.close()
        compare(link, tables, found, "digest")
        return LinkTiming(
            link.record.id,
            link.record.kind,
            raw,
            (restored - started) * 1000,
            (time.perf_counter() - restored) * 1000,
        )

    async def apply_incremental(self, conn: asyncpg.Connection, link: Link) -> LinkTiming:
        """Apply one incremental to the tenant schema in ``conn``'s database, in one
        transaction that commits only when the link's rows check out."""
        assert link.record.location is not None
        schema = link.schema
        started = time.perf_counter()
        async with conn.transaction():
            await see_tenant_rows(conn, link, local=True)
            order = await parents_first(conn, schema)
            for table in order:
                await conn.execute(f"ALTER TABLE {qualified(schema, table)} DISABLE TRIGGER USER")
            loaded: dict[str, str] = {}
            raw = 0
            for number, entry in enumerate(link.manifest["files"]):
                table, temp = entry["table"], f"goconsole_link_{number}"
                raw += await self._load(conn, link, entry, qualified(schema, table), temp)
                loaded[table] = temp
            if DELETION_LOG in loaded:
                for table in reversed(order):
                    await conn.execute(
                        f"DELETE FROM {qualified(schema, table)} WHERE id IN (SELECT row_id "
                        f"FROM {quote_ident(loaded[DELETION_LOG])} WHERE table_name = $1)",
                        table,
                    )
            for table in order:
                if table in loaded:
                    await _upsert(conn, qualified(schema, table), loaded[table], link, table)
            applied = time.perf_counter()
            await _check_link(conn, link, loaded)
            for table in order:
                await conn.execute(f"ALTER TABLE {qualified(schema, table)} ENABLE TRIGGER USER")
        return LinkTiming(
            link.record.id,
            link.record.kind,
            raw,
            (applied - started) * 1000,
            (time.perf_counter() - applied) * 1000,
        )

    async def _load(
        self,
        conn: asyncpg.Connection,
        link: Link,
        entry: dict[str, Any],
        table: str,
        temp: str,
    ) -> int:
        assert link.record.location is not None
        columns = link.manifest["columns"][entry["table"]]
        listed = ", ".join(quote_ident(c) for c in columns)
        await conn.execute(
            f"CREATE TEMP TABLE {quote_ident(temp)} ON COMMIT DROP AS "
            f"SELECT {listed} FROM {table} WITH NO DATA"
        )
        path = link.record.location / entry["name"]
        async with open_stream(path, link.expected(entry, self._identities)) as stream:
            try:
                await conn.copy_to_table(temp, source=stream, columns=columns, format="text")
            finally:
                raw = await stream.finish()  # a damaged file explains a failed COPY best
        return raw


@contextmanager
def _as_restore_error(link: Link) -> Iterator[None]:
    """A database error while restoring ``link`` as RestoreFailed ``restore-error``."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise RestoreFailed("restore-error", link.record.id, describe_error(exc)) from exc


async def parents_first(conn: asyncpg.Connection, schema: str) -> list[str]:
    """The schema's tables (:func:`~console.core.backups.digest.tenant_tables`) ordered so each
    comes after the tables its foreign keys reference (self-references aside); ties by name."""
    graph: dict[str, set[str]] = {name: set() for name in await tenant_tables(conn, schema)}
    for row in await conn.fetch(
        "SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid "
        "WHERE k.contype = 'f' AND k.conrelid <> k.confrelid "
        "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
        schema,
    ):
        if row["child"] in graph and row["parent"] in graph:
            graph[row["child"]].add(row["parent"])
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


async def see_tenant_rows(conn: asyncpg.Connection, link: Link, *, local: bool) -> None:
    """Make the tenant's row-level-security policies admit its rows in this session."""
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, $2)", link.tenant_id, local)


async def _upsert(conn: asyncpg.Connection, table: str, temp: str, link: Link, name: str) -> None:
    columns = link.manifest["columns"][name]
    listed = ", ".join(quote_ident(c) for c in columns)
    updates = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in columns)
    await conn.execute(
        f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {quote_ident(temp)} "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


async def _check_link(conn: asyncpg.Connection, link: Link, loaded: dict[str, str]) -> None:
    found: dict[str, TableDigest] = {}
    tables = link.manifest["tables"]
    for name in tables:
        table = qualified(link.schema, name)
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
        changed = TableDigest(0, "0")
        if name in loaded:
            source = (
                f"(SELECT t.* FROM {table} t WHERE t.id IN "
                f"(SELECT id FROM {quote_ident(loaded[name])}))"
            )
            row = await conn.fetchrow(digest_sql(source))
            assert row is not None
            changed = TableDigest(row[0], row[1])
        found[name] = TableDigest(rows, changed.digest)
        expected = tables[name]
        if name in loaded and changed.rows != expected.get("changed_rows"):
            raise RestoreFailed(
                "digest-mismatch",
                link.record.id,
                f"{name}: {changed.rows} changed rows restored, "
                f"{expected.get('changed_rows')} in the manifest",
            )
    compare(link, tables, found, "changed_digest")


def compare(
    link: Link, tables: dict[str, Any], found: dict[str, TableDigest], digest_key: str
) -> None:
    """RestoreFailed naming the first table whose rows or digest differ from the manifest."""
    for name, expected in tables.items():
        got = found[name]
        if got.rows != expected["rows"]:
            raise RestoreFailed(
                "digest-mismatch",
                link.record.id,
                f"{name}: {got.rows} rows restored, {expected['rows']} in the manifest",
            )
        want = expected.get(digest_key)
        if want is not None and got.digest != str(want):
            raise RestoreFailed(
                "digest-mismatch",
                link.record.id,
                f"{name}: {digest_key} {got.digest} restored, {want} in the manifest",
            )
