"""Backup failures and concurrency on real PostgreSQL: disk full, pg_dump killed, schema dropped
mid-run, key file unreadable (each recorded failed, its files removed, the other tenants backed
up); N at once; the tenant's lock against deactivate; the application never blocked; one
streaming pass with no plaintext file."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from conftest import gate_on
from helpers import PATIENCE_S, AuditGate, wait_until

from console.core.backups.catalog import BackupKind
from console.core.backups.pipeline import PARTIAL, open_new
from console.core.backups.report import BackupRunReport
from console.core.errors import TenantBusy
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant


class CatalogGate:
    """Holds backups at the INSERT of their catalog row (after planning, before the snapshot):
    a BEFORE INSERT trigger on ``public.backups`` waits for an advisory lock this gate holds."""

    LOCK_KEY = 0x6763_6267

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.closed = False

    async def close(self) -> None:
        await self.conn.execute("SELECT pg_advisory_lock($1)", self.LOCK_KEY)
        await self.conn.execute(f"""
            CREATE FUNCTION public.goconsole_test_backup_gate() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({self.LOCK_KEY});
                RETURN NEW;
            END $$;
            CREATE TRIGGER goconsole_test_backup_gate BEFORE INSERT ON public.backups
                FOR EACH ROW EXECUTE FUNCTION public.goconsole_test_backup_gate();
        """)
        self.closed = True

    async def waiters(self) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objsubid = 1 AND classid = 0 AND objid::bigint = $1",
                self.LOCK_KEY,
            )
        )

    async def open(self) -> None:
        if not self.closed:
            return
        await self.conn.execute("SELECT pg_advisory_unlock_all()")
        await self.conn.execute(
            "DROP TRIGGER IF EXISTS goconsole_test_backup_gate ON public.backups; "
            "DROP FUNCTION IF EXISTS public.goconsole_test_backup_gate()"
        )
        self.closed = False


@pytest.fixture
async def catalog_gate(database_dsn: str) -> AsyncIterator[CatalogGate]:
    async with gate_on(database_dsn, CatalogGate) as held:
        yield held


class HeldOpener:
    """Creates backup files like the pipeline does, but holds the data file of ``key`` until
    :meth:`release` (pg_dump then blocks on the full pipe, holding its locks)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.released = threading.Event()

    def __call__(self, path: Path) -> int:
        if path.parent.name == self.key and "manifest" not in path.name:
            self.released.wait(PATIENCE_S)
        return open_new(path)

    def release(self) -> None:
        self.released.set()


async def fill(su: asyncpg.Connection, tenant: Tenant, count: int) -> None:
    """``count`` customers: enough rows that pg_dump's output outgrows a pipe."""
    await su.execute(
        f"INSERT INTO {tenant.schema_name}.customers (email, full_name) "
        "SELECT 'c' || i || '@example.com', 'Customer number ' || i "
        "FROM generate_series(1, $1) AS i",
        count,
    )


async def two_tenants(service: ConsoleService, su: asyncpg.Connection) -> tuple[Tenant, Tenant]:
    acme = await service.provision("acme")
    beta = await service.provision("beta")
    await fill(su, acme, 3000)
    await fill(su, beta, 10)
    return acme, beta


async def assert_failed_cleanly(
    service: ConsoleService, su: asyncpg.Connection, report: BackupRunReport, reason: str
) -> None:
    """acme failed with ``reason`` (catalog and outcome), left no file; beta succeeded."""
    outcomes = {o.key: o for o in report.outcomes}
    assert outcomes["beta"].ok, outcomes["beta"]
    assert not outcomes["acme"].ok
    assert reason in (outcomes["acme"].error or ""), outcomes["acme"].error
    assert [o.key for o in report.failures] == ["acme"]
    row = await su.fetchrow(
        "SELECT b.status, b.error FROM public.backups b "
        "JOIN public.tenants t ON t.id = b.tenant_id WHERE t.key = 'acme'"
    )
    assert row is not None and row["status"] == "failed" and reason in row["error"]
    folder = service.settings.backup_dir() / "acme"
    assert list(folder.iterdir()) == [], "the failed backup left files"
    assert (service.settings.backup_dir() / "beta").is_dir()


async def pg_dump_backend(su: asyncpg.Connection, key: str) -> int | None:
    """The pid of the backend of pg_dump backing up ``key`` once it holds its table locks."""
    value: int | None = await su.fetchval(
        "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
        "WHERE a.application_name = $1 AND l.relation = $2::regclass AND l.granted",
        f"goconsole backup {key}",
        f"tenant_{key}.customers",
    )
    return value


# -- failures ------------------------------------------------------------------------------------


async def test_disk_full_fails_that_tenant_and_removes_its_partial_file(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    await two_tenants(service, su)
    created: list[Path] = []

    def full_disk(path: Path) -> int:
        fd = open_new(path)  # the partial file exists, as on a disk that fills up while writing
        if path.parent.name != "acme":
            return fd
        created.append(path)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY)  # every write fails with ENOSPC

    service.backups.writer.opener = full_disk
    report = await service.backups.run(None)
    assert [p.name.endswith(".dump.zst.age" + PARTIAL) for p in created] == [True]
    await assert_failed_cleanly(service, su, report, "No space left on device (ENOSPC)")


async def test_pg_dump_killed_fails_that_tenant(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    await two_tenants(service, su)
    held = HeldOpener("acme")
    service.backups.writer.opener = held
    run = asyncio.create_task(service.backups.run(None, concurrency=2))
    try:

        async def alive() -> None:
            assert not run.done(), run

        pid = await wait_until(lambda: pg_dump_backend(su, "acme"), "pg_dump's locks", alive)
        assert await su.fetchval("SELECT pg_terminate_backend($1, 30000)", pid)
    finally:
        held.release()
    report = await run
    await assert_failed_cleanly(service, su, report, "pg_dump exited 1")


async def test_schema_dropped_mid_run_fails_that_tenant(
    service: ConsoleService, su: asyncpg.Connection, catalog_gate: CatalogGate
) -> None:
    await two_tenants(service, su)
    await catalog_gate.close()
    run = asyncio.create_task(service.backups.run(None, concurrency=1))
    try:
        await wait_until(catalog_gate.waiters, "acme's backup to reach the catalog")
        await su.execute("DROP SCHEMA tenant_acme CASCADE")
    finally:
        await catalog_gate.open()
    report = await run
    await assert_failed_cleanly(service, su, report, "schema tenant_acme does not exist")


async def test_unreadable_key_file_fails_that_tenant(
    make_service, settings, su: asyncpg.Connection, tmp_path: Path
) -> None:
    import dataclasses

    keys = tmp_path / "recipients.txt"
    keys.write_text(f"# backup key\n{settings.backup.recipients[0]}\n")
    service = await make_service(
        settings=dataclasses.replace(
            settings,
            backup=dataclasses.replace(settings.backup, recipients=(), recipients_file=str(keys)),
        )
    )
    await service.init()
    await two_tenants(service, su)
    good = keys.read_text()

    def sabotage(event: StepEvent) -> None:
        """acme's backup finds the key file garbled; beta's finds it repaired."""
        if event.tenant == "acme" and event.phase is Phase.STARTED:
            keys.write_bytes(b"\xff\xfe garbage")
        if event.tenant == "acme" and event.phase is Phase.FAILED:
            keys.write_text(good)

    report = await service.backups.run(None, concurrency=1, sink=sabotage)
    await assert_failed_cleanly(
        service, su, report, f"backup.recipients_file {keys} cannot be read"
    )


# -- concurrency ---------------------------------------------------------------------------------


async def test_concurrency_runs_that_many_backups_at_once(
    service: ConsoleService, su: asyncpg.Connection, catalog_gate: CatalogGate
) -> None:
    for key in ("acme", "beta", "gamma"):
        await service.provision(key)
    await catalog_gate.close()
    run = asyncio.create_task(service.backups.run(None, concurrency=2))
    try:
        await wait_until(lambda: _at_least(catalog_gate, 2), "two backups at the gate")
        assert await catalog_gate.waiters() == 2
        busy = await service.busy_tenants()
        assert len(busy) == 2 and all("goconsole backup" in v for v in busy.values())
    finally:
        await catalog_gate.open()
    report = await run
    assert [o.key for o in report.succeeded] == ["acme", "beta", "gamma"]


async def _at_least(gate: CatalogGate, count: int) -> bool:
    return await gate.waiters() >= count


async def test_a_backup_holds_the_tenant_lock_and_never_blocks_the_application(
    service: ConsoleService,
    make_service,
    su: asyncpg.Connection,
    app_conn,
    gate: AuditGate,
) -> None:
    acme = await service.provision("acme")
    await fill(su, acme, 3000)
    other = await make_service()
    held = HeldOpener("acme")
    service.backups.writer.opener = held
    run = asyncio.create_task(service.backups.run(["acme"]))
    try:
        await wait_until(lambda: pg_dump_backend(su, "acme"), "pg_dump's locks")
        # deactivate is refused while the backup holds the tenant's lock
        with pytest.raises(TenantBusy, match="tenant 'acme' is busy: goconsole backup"):
            await other.deactivate("acme", timeout=1)
        # the application reads and writes every table meanwhile, never waiting for a lock
        conn = await app_conn()
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '200ms'")
            await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(acme.id))
            assert await conn.fetchval("SELECT count(*) FROM tenant_acme.customers") == 3000
            await conn.execute(
                "INSERT INTO tenant_acme.customers (email, full_name) VALUES ('x@y.z', 'New')"
            )
            await conn.execute(
                "UPDATE tenant_acme.customers SET full_name = 'Renamed' "
                "WHERE email = 'c1@example.com'"
            )
            await conn.execute("DELETE FROM tenant_acme.customers WHERE email = 'c2@example.com'")
    finally:
        held.release()
    report = await run
    assert report.outcomes[0].ok
    # the writes made during the backup are the next incremental's
    after = (await service.backups.run(["acme"])).outcomes[0].record
    assert after is not None and after.kind is BackupKind.INCREMENTAL
    assert after.raw_bytes and after.raw_bytes > 0

    # and a backup is refused while deactivate holds the lock
    await gate.close("deactivate.backup")
    deactivate = asyncio.create_task(other.deactivate("acme", timeout=5))
    try:
        await gate.wait_for_waiter()
        refused = await service.backups.run(["acme"])
        assert "tenant 'acme' is busy: goconsole deactivate" in (refused.failures[0].error or "")
    finally:
        await gate.open()
    await deactivate


# -- one pass, no plaintext on disk -------------------------------------------------------------


_OPENED: list[tuple[str, int]] = []
_WATCHING: list[Path] = []
_HOOKED: list[bool] = []


def _watch_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _WATCHING and isinstance(args[0], str | Path):
        path = Path(args[0])
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        mode = args[1] if isinstance(args[1], str) else ""
        writes = bool(flags & (os.O_WRONLY | os.O_RDWR)) or any(c in mode for c in "wax+")
        if writes and path.is_relative_to(_WATCHING[0]):
            _OPENED.append((str(path), flags))


async def test_a_backup_writes_only_its_encrypted_file_and_manifest(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    acme = await service.provision("acme")
    await fill(su, acme, 3000)
    if not _HOOKED:  # a hook cannot be removed: add it once; it records while _WATCHING is set
        sys.addaudithook(_watch_opens)
        _HOOKED.append(True)
    _OPENED.clear()  # what an earlier run of this test (the other server version) recorded
    _WATCHING.append(service.settings.backup_dir())
    try:
        report = await service.backups.run(["acme"])
    finally:
        _WATCHING.clear()
    record = report.outcomes[0].record
    assert record is not None and record.location is not None
    stem = record.location.name.split(".")[0]
    written = sorted(Path(p).name for p, _ in _OPENED)
    assert written == [f"{stem}.dump.zst.age{PARTIAL}", f"{stem}.manifest.json{PARTIAL}"]
    assert sorted(p.name for p in record.location.parent.iterdir()) == [
        f"{stem}.dump.zst.age",
        f"{stem}.manifest.json",
    ]
    assert record.raw_bytes is not None and record.raw_bytes > 3000 * 30
