"""Taking one tenant's backup (full or incremental) inside an operation its caller holds (the
``backup`` operation, or deactivate/offboard's final backup): plan, catalog row, one snapshot,
files through the pipeline, manifest, catalog row finished or failed.

Everything a backup records comes from one REPEATABLE READ transaction on a direct connection:
``pg_current_snapshot()`` (the boundary of the next incremental), the WAL position, ``now()``
(``covers_until``), the row counts and digests, and, for a full, the snapshot ``pg_dump``
imports (``--snapshot``), so the digests describe exactly the rows stored.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from console.config import BackupSettings
from console.core.backups import catalog, manifest, records
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.digest import digest_sql, schema_digests, tenant_tables
from console.core.backups.keys import load_recipients
from console.core.backups.manifest import COPY_CONTENT, FULL_CONTENT, FileEntry
from console.core.backups.pipeline import (
    ByteCounter,
    Opener,
    Stages,
    open_new,
    private_dir,
    write_small,
    writing,
)
from console.core.backups.plan import Plan, plan_next, untracked_tables
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec, Database
from console.core.errors import OperationFailed
from console.core.identifiers import qualified
from console.core.operations import Operation
from console.core.tenants.registry import Tenant
from console.core.tenants.schema import schema_revision

T = TypeVar("T")
STDERR_SHOWN = 500


@dataclass(frozen=True)
class Taken:
    """A finished backup, and why it is a full when an incremental was possible to ask for."""

    record: BackupRecord
    why_full: str | None


def changed_rows_sql(table: str) -> str:
    """The rows of ``table`` (qualified) the snapshot ``$1`` did not see: written by a
    transaction that was not committed, or not yet started, when it was taken."""
    return (
        f"SELECT * FROM {table} WHERE backup_xid >= pg_snapshot_xmin($1::text::pg_snapshot) "
        "AND NOT pg_visible_in_snapshot(backup_xid, $1::text::pg_snapshot)"
    )


class BackupWriter:
    """Takes backups of tenants into ``root/<tenant key>/``."""

    def __init__(
        self,
        db: Database,
        spec: ConnectionSpec,
        binaries: PgBinaries,
        settings: BackupSettings,
        root: Path,
        opener: Opener = open_new,
    ) -> None:
        self._db = db
        self._spec = spec
        self._binaries = binaries
        self.settings = settings
        self.root = root
        # How stored files are created; tests point it at a full device.
        self.opener = opener
        self._pg_dump_version: str | None = None

    def tenant_dir(self, key: str) -> Path:
        """Folder of one tenant's backups and exports (created 0700)."""
        return private_dir(self.root / key)

    async def take(
        self,
        op: Operation,
        tenant: Tenant,
        kind: BackupKind | None,
        reason: str,
        on_bytes: ByteCounter | None = None,
    ) -> Taken:
        """Back up ``tenant`` (``kind`` None: incremental when its newest chain can be
        extended). The caller holds the tenant's lock through ``op``. On failure the catalog
        row is ``failed`` with the reason, no file of it is left, and the error is raised."""
        plan = await self._plan(tenant, kind)
        if plan.kind is BackupKind.FULL and plan.why_full:
            op.info(f"full backup: {plan.why_full}")
        started_at = datetime.now(UTC)
        backup_id = uuid.uuid4()
        stamp = started_at.strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.tenant_dir(tenant.key)
        location = folder / (
            f"{stamp}-incr-{str(backup_id)[:8]}"
            if plan.kind is BackupKind.INCREMENTAL
            else f"{stamp}-full-{str(backup_id)[:8]}.dump{self._suffix()}"
        )
        async with self._db.acquire() as conn:
            await records.start(
                conn, backup_id, tenant, plan, reason, started_at, location, self.settings
            )
        clock = time.perf_counter()
        try:
            await self._write(tenant, plan, backup_id, location, on_bytes, started_at, reason)
        except BaseException as exc:
            records.remove_outputs(location, plan.kind)
            await records.mark_failed(self._db, backup_id, exc, clock)
            raise
        async with self._db.acquire() as conn:
            record = await catalog.get(conn, backup_id)
        assert record is not None
        return Taken(record, plan.why_full)

    def _suffix(self) -> str:
        """What the configured stages add to a stored file's name."""
        return (".zst" if self.settings.compression else "") + (
            ".age" if self.settings.encryption else ""
        )

    async def _plan(self, tenant: Tenant, kind: BackupKind | None) -> Plan:
        async with self._db.acquire() as conn:
            await records.close_interrupted(conn, tenant)
            _, revision = await schema_revision(conn, tenant.schema_name)
            tables = await tenant_tables(conn, tenant.schema_name)
            untracked = await untracked_tables(conn, tenant.schema_name, tables)
            return await plan_next(conn, tenant, kind, revision, untracked)

    async def _write(
        self,
        tenant: Tenant,
        plan: Plan,
        backup_id: uuid.UUID,
        location: Path,
        on_bytes: ByteCounter | None,
        started_at: datetime,
        reason: str,
    ) -> None:
        recipients = load_recipients(self.settings)
        level = self.settings.compression_level if self.settings.compression else None
        stages = Stages(level, recipients)
        async with (
            self._db.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            facts = await self._snapshot_facts(conn, tenant)
            tables = await tenant_tables(conn, tenant.schema_name)
            if plan.kind is BackupKind.FULL:
                files, table_facts = await self._full(
                    conn, tenant, tables, location, stages, on_bytes
                )
                columns = None
            else:
                assert plan.parent is not None and plan.parent.snapshot is not None
                private_dir(location)
                files, table_facts, columns = await self._incremental(
                    conn, tenant, tables, plan.parent.snapshot, location, stages, on_bytes
                )
        finished_at = datetime.now(UTC)
        facts.update(
            started_at=started_at,
            finished_at=finished_at,
            duration_ms=round((finished_at - started_at).total_seconds() * 1000, 1),
        )
        body = manifest.build(
            backup_id=str(backup_id),
            tenant={"id": str(tenant.id), "key": tenant.key, "schema": tenant.schema_name},
            kind=plan.kind.value,
            parent=str(plan.parent.id) if plan.parent else None,
            chain=[str(link.id) for link in plan.chain],
            facts=facts,
            reason=reason,
            tables=table_facts,
            columns=columns,
            files=files,
            compression_level=level,
            recipients=recipients.fingerprints if recipients else None,
            tools=manifest.tool_versions(await self._pg_dump_line()),
        )
        await asyncio.to_thread(
            write_small,
            manifest.manifest_path(location, plan.kind is BackupKind.INCREMENTAL),
            manifest.to_bytes(body),
            self.opener,
        )
        async with self._db.acquire() as conn:
            await records.mark_succeeded(conn, backup_id, body, facts)

    async def _snapshot_facts(self, conn: asyncpg.Connection, tenant: Tenant) -> dict[str, Any]:
        await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id))
        row = await conn.fetchrow(
            "SELECT pg_current_snapshot()::text AS snapshot, "
            "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn, "
            "now() AS covers_until, current_setting('server_version') AS server_version"
        )
        assert row is not None
        present, revision = await schema_revision(conn, tenant.schema_name)
        if not present:
            raise OperationFailed(
                f"schema {tenant.schema_name} does not exist (dropped outside the console?)"
            )
        return {**dict(row), "tree_revision": revision}

    async def _full(
        self,
        conn: asyncpg.Connection,
        tenant: Tenant,
        tables: list[str],
        path: Path,
        stages: Stages,
        on_bytes: ByteCounter | None,
    ) -> tuple[list[FileEntry], dict[str, dict[str, Any]]]:
        snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
        async with writing(path, stages, opener=self.opener, on_bytes=on_bytes) as out:
            digests, _ = await _together(
                schema_digests(conn, tenant.schema_name, tables),
                self._pg_dump(tenant, snapshot, out.fd, out.end_input),
            )
            stored = await out.finish()
        entry = FileEntry(
            path.name, None, FULL_CONTENT, stored.raw_bytes, stored.bytes, stored.sha256
        )
        return [entry], {t: {"rows": d.rows, "digest": d.digest} for t, d in digests.items()}

    async def _incremental(
        self,
        conn: asyncpg.Connection,
        tenant: Tenant,
        tables: list[str],
        parent_snapshot: str,
        folder: Path,
        stages: Stages,
        on_bytes: ByteCounter | None,
    ) -> tuple[list[FileEntry], dict[str, dict[str, Any]], dict[str, list[str]]]:
        files: list[FileEntry] = []
        facts: dict[str, dict[str, Any]] = {}
        columns: dict[str, list[str]] = {}
        for table in tables:
            name = qualified(tenant.schema_name, table)
            changed_sql = changed_rows_sql(name)
            columns[table] = [
                r[0]
                for r in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    name,
                )
            ]
            total = await conn.fetchval(f"SELECT count(*) FROM {name}")
            changed = await conn.fetchrow(digest_sql(f"({changed_sql})"), parent_snapshot)
            assert changed is not None
            facts[table] = {"rows": total, "changed_rows": changed[0], "changed_digest": changed[1]}
            if not changed[0]:
                continue
            path = folder / f"{table}.copy{stages.suffix}"
            async with writing(path, stages, opener=self.opener, on_bytes=on_bytes) as out:
                await conn.copy_from_query(
                    changed_sql, parent_snapshot, output=out.write, format="text"
                )
                stored = await out.finish()
            files.append(
                FileEntry(
                    path.name, table, COPY_CONTENT, stored.raw_bytes, stored.bytes, stored.sha256
                )
            )
        return files, facts, columns

    async def _pg_dump(self, tenant: Tenant, snapshot: str, out_fd: int, handed: Any) -> None:
        """``pg_dump`` of the tenant schema at ``snapshot`` into ``out_fd`` (custom format, no
        compression of its own)."""
        schema_pattern = '"' + tenant.schema_name.replace('"', '""') + '"'
        env = {**self._spec.libpq_env(), "PGAPPNAME": f"goconsole backup {tenant.key}"[:63]}
        try:
            proc = await asyncio.create_subprocess_exec(
                str(self._binaries.tool("pg_dump")),
                "--format=custom",
                "--compress=0",
                f"--schema={schema_pattern}",
                f"--snapshot={snapshot}",
                "--dbname",
                self._spec.conninfo,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_fd,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        finally:
            handed()  # the child has its copy of the pipe: close ours so the end shows
        try:
            _, err = await proc.communicate()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        code = proc.returncode or 0
        if code != 0:
            text = err.decode(errors="replace").strip()[-STDERR_SHOWN:] or "no message"
            how = f"was killed by signal {-code}" if code < 0 else f"exited {code}"

            raise OperationFailed(f"pg_dump {how}: {text}")

    async def _pg_dump_line(self) -> str:
        if self._pg_dump_version is None:
            result = await asyncio.to_thread(
                subprocess.run,
                [str(self._binaries.tool("pg_dump")), "--version"],
                capture_output=True,
                text=True,
                check=False,
            )
            self._pg_dump_version = result.stdout.strip() or "unknown"
        return self._pg_dump_version


async def _together(first: Awaitable[T], second: Awaitable[Any]) -> tuple[T, Any]:
    """Run both; the first failure cancels the other and is raised."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return tasks[0].result(), tasks[1].result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
