"""Shared helpers for the test suite (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pyrage
import pytest
from textual.pilot import Pilot

from console.config import ClusterSettings, Settings, UiSettings
from console.devenv.pgbouncer import LocalPgBouncer, pgbouncer_binary
from console.devenv.postgres import server_os_user
from console.ui.screens.tenant_detail import TenantDetailScreen
from console.ui.screens.tenants import TenantsScreen

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_ROLE = ClusterSettings().app_role
# How long a test waits for something that must happen soon; exceeding it fails the test.
PATIENCE_S = 60.0

Condition = Callable[[], object | Awaitable[object]]


@dataclasses.dataclass(frozen=True)
class AgeKey:
    """An age X25519 identity in a file (what ``age-keygen -o`` writes) and its recipient."""

    identity_file: Path
    recipient: str


def make_age_key(folder: Path, name: str = "backup-key.txt") -> AgeKey:
    """Generate an age identity into ``folder/name`` (0600)."""
    identity = pyrage.x25519.Identity.generate()
    path = folder / name
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return AgeKey(path, str(identity.to_public()))


def backup_config(backup_dir: Path, key: AgeKey) -> str:
    """The ``[backup]`` table of a config file: backups in ``backup_dir`` encrypted to
    ``key``."""
    return (
        f'[backup]\ndir = "{backup_dir}"\nrecipients = ["{key.recipient}"]\n'
        f'identity_file = "{key.identity_file}"\n'
    )


def fast(settings: Settings, **changes: object) -> Settings:
    """Settings with a short refresh interval (UI tests wait for refreshes)."""
    return dataclasses.replace(settings, ui=UiSettings(refresh_interval=0.3), **changes)


async def wait_until(
    predicate: Callable[[], Awaitable[object]],
    what: str,
    alive: Callable[[], Awaitable[None]] | None = None,
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail after PATIENCE_S.

    ``alive`` is awaited on each round and should raise when the awaited party died.
    """
    deadline = time.monotonic() + PATIENCE_S
    while True:
        if alive is not None:
            await alive()
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {PATIENCE_S:g}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for(pilot: Pilot[Any], condition: Condition, what: str) -> object:
    """The UI's :func:`wait_until`: poll ``condition`` (sync or async) between short pauses of
    the app under test until it is truthy; fail after PATIENCE_S with ``what`` in the message."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {PATIENCE_S:g}s waiting for {what}")
        await pilot.pause(0.05)


async def tenants_screen(pilot: Pilot[object]) -> TenantsScreen:
    """The tenants screen once its first load is on the table."""
    app = pilot.app

    def ready() -> TenantsScreen | None:
        screen = app.screen
        return screen if isinstance(screen, TenantsScreen) and screen.loaded else None

    found = await wait_for(pilot, ready, "the tenants screen to load")
    assert isinstance(found, TenantsScreen)
    return found


async def detail_screen(pilot: Pilot[object], key: str) -> TenantDetailScreen:
    """The detail screen of ``key`` once it has loaded the tenant."""
    app = pilot.app

    def ready() -> TenantDetailScreen | None:
        screen = app.screen
        if isinstance(screen, TenantDetailScreen) and screen.key == key and screen.detail:
            return screen
        return None

    found = await wait_for(pilot, ready, f"the detail view of {key} to load")
    assert isinstance(found, TenantDetailScreen)
    return found


class AuditGate:
    """Holds an operation at the INSERT of one audit action, deterministically.

    A BEFORE INSERT trigger on ``public.tenant_audit_log`` takes an advisory lock that this gate
    holds, so the writer of the chosen action waits (inside its operation, with the tenant's
    advisory lock held) until :meth:`open` is called or its backend is terminated.
    """

    LOCK_KEY = 0x6763_7465

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.closed_on: str | None = None

    async def close(self, action: str) -> None:
        """Hold writers of ``action`` from now on."""
        assert action.replace(".", "_").isidentifier()
        await self.conn.execute("SELECT pg_advisory_lock($1)", self.LOCK_KEY)
        await self.conn.execute(f"""
            CREATE FUNCTION public.goconsole_test_gate() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.action_type = TG_ARGV[0] THEN
                    PERFORM pg_advisory_xact_lock({self.LOCK_KEY});
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER goconsole_test_gate BEFORE INSERT ON public.tenant_audit_log
                FOR EACH ROW EXECUTE FUNCTION public.goconsole_test_gate('{action}');
        """)
        self.closed_on = action

    async def waiters(self) -> list[int]:
        """Backends currently held at the gate."""
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objsubid = 1 AND classid = 0 AND objid::bigint = $1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            self.LOCK_KEY,
        )
        return [r["pid"] for r in rows]

    async def wait_for_waiter(self, alive: Callable[[], Awaitable[None]] | None = None) -> int:
        """The pid of the first backend held at the gate (waits for it)."""
        pids = await wait_until(
            self.waiters, f"a writer of {self.closed_on} to reach the gate", alive
        )
        assert isinstance(pids, list)
        return int(pids[0])

    async def open(self) -> None:
        """Let held writers through and stop holding new ones."""
        if self.closed_on is None:
            return
        await self.conn.execute("SELECT pg_advisory_unlock_all()")
        await self.conn.execute(
            "DROP TRIGGER IF EXISTS goconsole_test_gate ON public.tenant_audit_log; "
            "DROP FUNCTION IF EXISTS public.goconsole_test_gate()"
        )
        self.closed_on = None


class TableGate:
    """Holds migrations inside their tenants' transactions, deterministically.

    A transaction on the gate's own connection holds ROW EXCLUSIVE locks on chosen tables: DDL
    on one (CREATE INDEX and stronger) waits there, inside its transaction with its advisory
    lock taken, until :meth:`open` rolls the gate's transaction back; readers (the screens'
    size queries) are not held.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._tables: list[str] = []
        self._tx: Any = None

    async def close(self, tables: list[str]) -> None:
        """Lock ``tables`` (qualified names) until :meth:`open`."""
        self._tx = self.conn.transaction()
        await self._tx.start()
        for table in tables:
            await self.conn.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
        self._tables = tables

    async def waiters(self) -> list[int]:
        """Backends waiting for one of the locked tables."""
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND NOT granted "
            "AND relation = ANY($1::regclass[])",
            self._tables,
        )
        return [r["pid"] for r in rows]

    async def open(self) -> None:
        """Release the tables."""
        if self._tx is not None:
            await self._tx.rollback()
            self._tx = None


@contextmanager
def running_pgbouncer(server_port: int, prefix: str, **options: Any) -> Iterator[LocalPgBouncer]:
    """A real PgBouncer in a throwaway folder in front of the cluster on ``server_port``
    (``options`` go to :class:`LocalPgBouncer`); skips when pgbouncer is not installed."""
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    owner = server_os_user()
    if owner is not None:
        shutil.chown(work, owner, owner)
    bouncer = LocalPgBouncer(work, server_port, **options)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(work, ignore_errors=True)
