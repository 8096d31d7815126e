"""PgBouncer pools against a real PgBouncer (Debian's 1.18) in front of real PostgreSQL.

Each module gets its own PgBouncer (fixture ``pgbouncer``); each test empties the include file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import psycopg
import pytest
from helpers import APP_ROLE, running_pgbouncer, wait_until

from console.config import Settings
from console.core.errors import InvalidInput, InvalidState, OperationFailed, PgBouncerUnavailable
from console.core.events import Phase, StepEvent
from console.core.pools.monitor import PoolView
from console.core.pools.rows import parse_clients, parse_databases, parse_pools, parse_stats
from console.core.pools.service import POOL_STEPS_SKIPPED
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import LocalCluster, free_port


async def pool_of(service: ConsoleService, alias: str) -> PoolView:
    snapshot = await service.pools.snapshot()
    return next(v for v in snapshot.pools if v.name == alias)


async def admin_rows(bouncer: LocalPgBouncer, what: str) -> list[dict[str, object]]:
    """SHOW <what> on a fresh admin connection (independent of the console's)."""
    conn = await psycopg.AsyncConnection.connect(
        bouncer.admin_dsn, autocommit=True, prepare_threshold=None
    )
    try:
        cur = await conn.execute(f"SHOW {what}".encode())
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
    finally:
        await conn.close()


async def alias_row(bouncer: LocalPgBouncer, alias: str):
    return parse_databases(await admin_rows(bouncer, "DATABASES")).get(alias)


async def tenant_client(bouncer: LocalPgBouncer, key: str) -> asyncpg.Connection:
    """The application role through the tenant's alias (transaction pooling: no statement
    cache)."""
    return await asyncpg.connect(
        bouncer.dsn(f"tenant_{key}", APP_ROLE), statement_cache_size=0, timeout=10
    )


async def audit_actions(su: asyncpg.Connection, key: str) -> list[str]:
    rows = await su.fetch(
        "SELECT action_type FROM public.tenant_audit_log l JOIN public.tenants t "
        "ON t.id = l.tenant_id WHERE t.key = $1 ORDER BY l.action_timestamp, l.id",
        key,
    )
    return [r["action_type"] for r in rows]


async def test_show_output_of_a_live_pgbouncer_parses_by_name(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    client = await tenant_client(pgbouncer, "acme")
    try:
        await client.fetchval("SELECT 1")
        pools = parse_pools(await admin_rows(pgbouncer, "POOLS"))
        stats = parse_stats(await admin_rows(pgbouncer, "STATS"))
        databases = parse_databases(await admin_rows(pgbouncer, "DATABASES"))
        clients = parse_clients(await admin_rows(pgbouncer, "CLIENTS"))
    finally:
        await client.close()
    assert pools["tenant_acme"].cl_active == 1
    assert stats["tenant_acme"].xact_count >= 1
    assert databases["tenant_acme"].pool_size == 20
    assert databases["tenant_acme"].reserve_pool == 5
    assert [c.user for c in clients if c.database == "tenant_acme"] == [APP_ROLE]


def test_pgbouncer_that_logs_over_a_mebibyte_stays_responsive(pg_cluster: LocalCluster) -> None:
    """Its log goes to a file: a child whose stderr pipe nobody reads blocks in write(2) after
    64 KiB, and then answers nothing."""
    with running_pgbouncer(
        pg_cluster.port, "goconsole-pgbouncer-log-", settings={"verbose": "2"}
    ) as bouncer:
        while bouncer.log_file.stat().st_size < 1 << 20:  # ~600 refused logins at verbose 2
            with pytest.raises(psycopg.OperationalError, match="no such database"):
                psycopg.connect(bouncer.dsn("nosuch", "postgres"), connect_timeout=5)
        with psycopg.connect(
            bouncer.admin_dsn, autocommit=True, prepare_threshold=None, connect_timeout=5
        ) as admin:
            assert "PgBouncer" in str(admin.execute(b"SHOW VERSION").fetchone())
            assert admin.execute(b"SHOW POOLS").fetchall() is not None


async def test_provisioned_alias_serves_the_tenant_with_rls_per_transaction(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    acme = await bouncer_service.provision("acme")
    globex = await bouncer_service.provision("globex")
    text = Path(bouncer_service.settings.pgbouncer.include_file).read_text()
    assert "tenant_acme = host=127.0.0.1" in text and "tenant_globex" in text
    assert await audit_actions(su, "acme") == [
        "provision.register",
        "provision.schema",
        "provision.init_data",
        "provision.verify",
        "provision.pool",
        "provision.activate",
    ]

    client = await tenant_client(pgbouncer, "acme")
    try:
        async with client.transaction():
            await client.execute(
                "SELECT set_config('app.current_tenant_id', $1, true)", str(acme.id)
            )
            await client.execute(
                "INSERT INTO tenant_acme.customers (email, full_name) "
                "VALUES ('a@example.com', 'A B')"
            )
            own = await client.fetchval("SELECT count(*) FROM tenant_acme.customers")
        async with client.transaction():
            await client.execute(
                "SELECT set_config('app.current_tenant_id', $1, true)", str(globex.id)
            )
            foreign = await client.fetchval("SELECT count(*) FROM tenant_acme.customers")
        # the setting was transaction-local: the next transaction starts without a tenant
        unset = await client.fetchval("SELECT count(*) FROM tenant_acme.customers")
    finally:
        await client.close()
    assert (own, foreign, unset) == (1, 0, 0)


async def test_set_size_rewrites_the_alias_and_reloads(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    await bouncer_service.provision("acme")
    alias = await bouncer_service.pools.set_size("acme", "7", "2")
    assert (alias.pool_size, alias.reserve_pool) == (7, 2)
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and (row.pool_size, row.reserve_pool) == (7, 2)
    include = Path(bouncer_service.settings.pgbouncer.include_file)
    assert "pool_size=20" in include.with_name("tenants.ini.prev").read_text()
    assert "pool_size=7 reserve_pool=2" in include.read_text()
    assert (await audit_actions(su, "acme"))[-1] == "pool.set_size"

    before = include.read_text()
    for size, reserve in (("-1", "0"), ("51", "0"), ("abc", None), ("45", "10")):
        with pytest.raises(InvalidInput, match="pool size must be 1-50"):
            await bouncer_service.pools.set_size("acme", size, reserve)
    assert include.read_text() == before
    assert (await audit_actions(su, "acme"))[-1] == "pool.set_size"

    # PgBouncer's own max_db_connections caps the range when it is lower than the config
    admin = await psycopg.AsyncConnection.connect(
        pgbouncer.admin_dsn, autocommit=True, prepare_threshold=None
    )
    try:
        await admin.execute(b"SET max_db_connections = 10")
        with pytest.raises(InvalidInput, match="pool size must be 1-10"):
            await bouncer_service.pools.set_size("acme", "12", "0")
    finally:
        await admin.execute(b"SET max_db_connections = 50")
        await admin.close()


async def test_set_default_changes_aliases_without_their_own_size(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    try:
        assert await bouncer_service.pools.set_default("15") == 15
        databases = parse_databases(await admin_rows(pgbouncer, "DATABASES"))
        config = {r["key"]: r["value"] for r in await admin_rows(pgbouncer, "CONFIG")}
        assert config["default_pool_size"] == "15"
        assert databases["pgbouncer"] is not None
        with pytest.raises(InvalidInput, match="pool size must be 1-50"):
            await bouncer_service.pools.set_default("0")
    finally:
        await bouncer_service.pools.set_default("20")


async def test_pause_waits_for_an_open_transaction_then_returns(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    await bouncer_service.provision("acme")
    client = await tenant_client(pgbouncer, "acme")
    transaction = client.transaction()
    await transaction.start()
    await client.fetchval("SELECT 1")
    pause = asyncio.ensure_future(bouncer_service.pools.pause("acme", timeout=30))
    try:

        async def pause_requested() -> bool:
            row = await alias_row(pgbouncer, "tenant_acme")
            return row is not None and row.paused

        await wait_until(pause_requested, "PgBouncer to mark tenant_acme as pausing")
        assert not pause.done()  # still waiting for the open transaction
        await transaction.commit()
        await asyncio.wait_for(pause, 30)
        row = await alias_row(pgbouncer, "tenant_acme")
        assert row is not None and row.paused
    finally:
        await client.close()
        await bouncer_service.pools.simple("resume", "acme")
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and not row.paused
    assert (await audit_actions(su, "acme"))[-2:] == ["pool.pause", "pool.resume"]


async def test_pause_timeout_names_the_client_and_leaves_the_pool_resumed(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    await bouncer_service.provision("acme")
    client = await tenant_client(pgbouncer, "acme")
    try:
        transaction = client.transaction()
        await transaction.start()
        await client.fetchval("SELECT 1")
        with pytest.raises(OperationFailed) as caught:
            await bouncer_service.pools.pause("acme", timeout=0.5)
        assert "timed out after 0.5s; the pool was resumed" in caught.value.message
        assert f"{APP_ROLE}@127.0.0.1" in caught.value.message
        row = await alias_row(pgbouncer, "tenant_acme")
        assert row is not None and not row.paused
        assert await client.fetchval("SELECT 2") == 2  # the client carries on
        await transaction.commit()
    finally:
        await client.close()
    assert (await audit_actions(su, "acme"))[-1] == "pool.failed"


async def test_disable_refuses_new_clients_and_kill_drops_them(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    connected = await tenant_client(pgbouncer, "acme")
    await bouncer_service.pools.simple("disable", "acme")
    with pytest.raises(asyncpg.PostgresError, match="disabled"):
        await tenant_client(pgbouncer, "acme")
    assert await connected.fetchval("SELECT 1") == 1  # existing clients are not affected
    await bouncer_service.pools.simple("enable", "acme")

    assert await bouncer_service.pools.kill("acme") == 1
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await connected.fetchval("SELECT 1")
    connected.terminate()
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and not row.paused  # resumed after the kill by default
    fresh = await tenant_client(pgbouncer, "acme")
    assert await fresh.fetchval("SELECT 1") == 1
    await fresh.close()

    assert await bouncer_service.pools.kill("acme", keep_paused=True) == 0
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and row.paused
    await bouncer_service.pools.simple("resume", "acme")
    await bouncer_service.pools.simple("reconnect", "acme")


async def test_hundred_concurrent_clients_through_the_alias_see_no_errors(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    acme = await bouncer_service.provision("acme")
    await bouncer_service.pools.set_size("acme", "10", "0")
    errors: list[BaseException] = []

    async def worker(n: int) -> None:
        try:
            conn = await tenant_client(pgbouncer, "acme")
        except Exception as exc:  # any failure counts
            errors.append(exc)
            return
        try:
            for i in range(5):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('app.current_tenant_id', $1, true)", str(acme.id)
                    )
                    await conn.execute(
                        "INSERT INTO tenant_acme.customers (email, full_name) VALUES ($1, 'C D')",
                        f"c{n}-{i}@example.com",
                    )
                    await conn.fetch(
                        "SELECT id FROM tenant_acme.customers WHERE email = $1",
                        f"c{n}-{i}@example.com",
                    )
        except Exception as exc:
            errors.append(exc)
        finally:
            await conn.close()

    await asyncio.gather(*(worker(n) for n in range(100)))
    assert errors == []
    snapshot = await bouncer_service.pools.snapshot()
    view = next(v for v in snapshot.pools if v.name == "tenant_acme")
    assert view.pool.servers <= 10
    async with bouncer_service.db.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM tenant_acme.customers")
    assert count == 500


async def test_snapshot_sorts_by_saturation_and_flags_waiting_clients(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    for key in ("calm", "busy"):
        await bouncer_service.provision(key)
    await bouncer_service.pools.set_size("busy", "1", "0")
    holder = await tenant_client(pgbouncer, "busy")
    waiter = await tenant_client(pgbouncer, "busy")
    transaction = holder.transaction()
    await transaction.start()
    await holder.fetchval("SELECT 1")
    blocked = asyncio.ensure_future(waiter.fetchval("SELECT 2"))
    try:

        async def waiting() -> object:
            snap = await bouncer_service.pools.snapshot()
            return snap if snap.waiting else None

        snapshot = await wait_until(waiting, "a client waiting on tenant_busy")
        first = snapshot.pools[0]  # type: ignore[attr-defined]
        assert first.name == "tenant_busy"
        assert "WAITING" in first.alerts
        assert first.utilisation == 1.0
        data = snapshot.as_json()  # type: ignore[attr-defined]
        assert data["totals"]["max_client_conn"] == 1000
        assert data["totals"]["max_db_connections"] == 50
        assert {p["database"] for p in data["pools"]} >= {"tenant_busy", "tenant_calm"}
    finally:
        await transaction.commit()
        assert await asyncio.wait_for(blocked, 30) == 2
        await holder.close()
        await waiter.close()


async def test_rates_from_successive_snapshots(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    client = await tenant_client(pgbouncer, "acme")
    try:
        await client.fetchval("SELECT 1")  # PgBouncer lists a database's stats once it is used
        first = await bouncer_service.pools.snapshot()
        assert all(v.rates is None for v in first.pools)  # no baseline yet
        for _ in range(20):
            await client.fetchval("SELECT 1")
        second = await bouncer_service.pools.snapshot()
    finally:
        await client.close()
    rates = next(v for v in second.pools if v.name == "tenant_acme").rates
    assert rates is not None
    assert rates.xact_per_s > 0 and rates.query_per_s > 0
    assert rates.avg_query_ms >= 0 and rates.avg_wait_ms >= 0


async def test_stopped_pgbouncer_is_reported_and_recovered(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    monitor = bouncer_service.pools.monitor
    await bouncer_service.pools.snapshot()
    pgbouncer.stop()
    try:
        with pytest.raises(PgBouncerUnavailable, match="unreachable"):
            await bouncer_service.pools.snapshot()
        assert monitor.next_delay(1.0) == 2.0
        with pytest.raises(PgBouncerUnavailable):
            await bouncer_service.pools.snapshot()
        assert monitor.next_delay(1.0) == 4.0
        # lifecycle keeps working with PgBouncer down: the alias waits in the include file
        tenant = await bouncer_service.provision("late")
        assert tenant.status == "ACTIVE"
    finally:
        pgbouncer.start()
    snapshot = await bouncer_service.pools.snapshot()
    assert snapshot.rates_reset
    assert monitor.next_delay(1.0) == 1.0
    assert {"tenant_acme", "tenant_late"} <= {v.name for v in snapshot.pools}


async def test_deactivate_blocks_the_pool_and_reactivate_opens_it(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    await bouncer_service.provision("acme")
    await bouncer_service.deactivate("acme", timeout=5)
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and row.paused and row.disabled
    actions = await audit_actions(su, "acme")
    assert actions.index("deactivate.pool_block") < actions.index("deactivate.drain")
    await bouncer_service.reactivate("acme")
    row = await alias_row(pgbouncer, "tenant_acme")
    assert row is not None and not row.paused and not row.disabled
    client = await tenant_client(pgbouncer, "acme")
    assert await client.fetchval("SELECT 1") == 1
    await client.close()


async def test_deactivate_rolls_the_pool_back_when_a_client_holds_on(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    client = await tenant_client(pgbouncer, "acme")
    transaction = client.transaction()
    await transaction.start()
    await client.fetchval("SELECT 1")
    try:
        with pytest.raises(OperationFailed, match="PAUSE tenant_acme timed out"):
            await bouncer_service.deactivate("acme", timeout=0.5)
        row = await alias_row(pgbouncer, "tenant_acme")
        assert row is not None and not row.paused and not row.disabled
        assert (await bouncer_service.tenants())[0].status == "ACTIVE"
        await transaction.commit()
    finally:
        await client.close()

    # with --force the holder is dropped and the pool stays blocked
    client = await tenant_client(pgbouncer, "acme")
    transaction = client.transaction()
    await transaction.start()
    await client.fetchval("SELECT 1")
    try:
        tenant = await bouncer_service.deactivate("acme", timeout=0.5, force=True)
        assert tenant.status == "INACTIVE"
        row = await alias_row(pgbouncer, "tenant_acme")
        assert row is not None and row.paused and row.disabled
    finally:
        client.terminate()


async def test_offboard_removes_the_alias(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    await bouncer_service.offboard("acme", timeout=5)
    assert await alias_row(pgbouncer, "tenant_acme") is None
    assert "tenant_acme" not in Path(bouncer_service.settings.pgbouncer.include_file).read_text()
    with pytest.raises(InvalidState, match="ARCHIVED"):
        await bouncer_service.pools.simple("resume", "acme")


async def test_sync_aligns_aliases_with_the_registry(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer
) -> None:
    await bouncer_service.provision("acme")
    include = Path(bouncer_service.settings.pgbouncer.include_file)
    include.write_text(
        "[databases]\ntenant_ghost = host=127.0.0.1 port=1 dbname=x pool_size=1 reserve_pool=0\n"
    )
    report = await bouncer_service.pools.sync()
    assert [c.describe() for c in report.changes] == [
        "tenant_acme: added",
        "tenant_ghost: removed",
    ]
    assert report.reblocked == ()
    assert await alias_row(pgbouncer, "tenant_acme") is not None
    assert await alias_row(pgbouncer, "tenant_ghost") is None


async def test_sync_repairs_every_field_and_keeps_sizes_set_explicitly(
    bouncer_service: ConsoleService,
    bouncer_settings: Settings,
    database_dsn: str,
    pgbouncer: LocalPgBouncer,
) -> None:
    """After PostgreSQL moved to another port, every alias is pointed at it again; a size set
    with ``pool set-size`` stays, a size nobody set follows the configured default."""
    for key in ("acme", "bob", "carol"):
        await bouncer_service.provision(key)
    await bouncer_service.pools.set_size("carol", 7, 1)
    port = pgbouncer.backend_port
    include = Path(bouncer_settings.pgbouncer.include_file)
    include.write_text(
        "[databases]\n"
        "tenant_acme = host=127.0.0.1 port=1 dbname=x pool_size=20 reserve_pool=5\n"
        "tenant_bob = host=127.0.0.1 port=1 dbname=x pool_size=3 reserve_pool=0\n"
        "tenant_carol = host=127.0.0.1 port=1 dbname=x pool_size=7 reserve_pool=1\n"
    )
    await bouncer_service.pools.admin.command("RELOAD")
    dbname = bouncer_service.pools.target.dbname

    shown = await asyncio.to_thread(run_cli, bouncer_settings, database_dsn, "pool", "sync")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"tenant_acme: port 1 → {port}, dbname x → {dbname}",
        f"tenant_bob: port 1 → {port}, dbname x → {dbname}, pool_size 3 → 20, reserve_pool 0 → 5",
        f"tenant_carol: port 1 → {port}, dbname x → {dbname}",
        "3 alias(es) changed: 0 added, 0 removed, 3 updated",
    ]
    for key, size, reserve in (("acme", 20, 5), ("bob", 20, 5), ("carol", 7, 1)):
        row = await alias_row(pgbouncer, f"tenant_{key}")
        assert row is not None
        assert (row.port, row.database, row.pool_size, row.reserve_pool) == (
            port,
            dbname,
            size,
            reserve,
        )
    client = await tenant_client(pgbouncer, "bob")
    try:
        assert await client.fetchval("SELECT 1") == 1
    finally:
        await client.close()
    again = await asyncio.to_thread(
        run_cli, bouncer_settings, database_dsn, "pool", "sync", "--json"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"changes": [], "reblocked": [], "reload": "done"}


async def test_pool_waiting_without_a_server_says_why(
    make_service, bouncer_settings: Settings, database_dsn: str, pgbouncer: LocalPgBouncer
) -> None:
    """An alias pointing at a dead port: clients wait, PgBouncer has no server connection, and
    the snapshot (and ``pool show``) say why, from PgBouncer's log and the alias' target."""
    settings = dataclasses.replace(
        bouncer_settings,
        pgbouncer=dataclasses.replace(bouncer_settings.pgbouncer, log_file=str(pgbouncer.log_file)),
    )
    service = await make_service(settings=settings)
    await service.init()
    await service.provision("acme")
    dead = free_port()
    Path(settings.pgbouncer.include_file).write_text(
        f"[databases]\ntenant_acme = host=127.0.0.1 port={dead} dbname=x pool_size=2 "
        "reserve_pool=0\n"
    )
    await service.pools.admin.command("RELOAD")
    waiter = asyncio.ensure_future(tenant_client(pgbouncer, "acme"))
    try:

        async def stuck() -> PoolView | None:
            view = await pool_of(service, "tenant_acme")
            return view if view.reason is not None else None

        view = await wait_until(stuck, "tenant_acme waiting with a reason")
        assert isinstance(view, PoolView)
        assert "NO SERVER" in view.alerts
        assert view.reason is not None
        assert view.reason.startswith(f"server connect failed (127.0.0.1:{dead})")
        assert f"alias points at 127.0.0.1:{dead}, not the managed server" in view.reason
        shown = await asyncio.to_thread(
            run_cli, settings, database_dsn, "pool", "show", "--interval", "0.1"
        )
        assert shown.returncode == 0, shown.stderr
        assert (
            f"tenant_acme: clients wait with no server connection: server connect failed "
            f"(127.0.0.1:{dead})" in shown.stdout
        )
        data = await asyncio.to_thread(
            run_cli, settings, database_dsn, "pool", "show", "--json", "--interval", "0.1"
        )
        assert json.loads(data.stdout)["pools"][0]["reason"].startswith("server connect failed")
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)


async def test_sync_blocks_inactive_tenants_again_after_a_pgbouncer_restart(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    await bouncer_service.provision("sleepy")
    await bouncer_service.provision("awake")
    await bouncer_service.deactivate("sleepy", timeout=5)
    pgbouncer.stop()  # PgBouncer keeps DISABLE/PAUSE in memory only
    pgbouncer.start()
    row = await alias_row(pgbouncer, "tenant_sleepy")
    assert row is not None and not row.paused and not row.disabled

    report = await bouncer_service.pools.sync()
    assert report.reblocked == ("tenant_sleepy",)
    row = await alias_row(pgbouncer, "tenant_sleepy")
    assert row is not None and row.paused and row.disabled
    awake = await alias_row(pgbouncer, "tenant_awake")
    assert awake is not None and not awake.paused and not awake.disabled
    assert (await audit_actions(su, "sleepy"))[-1] == "pool.reblock"
    assert (await bouncer_service.pools.sync()).reblocked == ()  # nothing left to do
    await bouncer_service.reactivate("sleepy")
    row = await alias_row(pgbouncer, "tenant_sleepy")
    assert row is not None and not row.paused and not row.disabled


# -- CLI ---------------------------------------------------------------------------------------


def console_argv(settings: Settings, dsn: str, *args: str, command_timeout: float = 2.0):
    """``python -m console`` with a config file managing the test PgBouncer (none when
    ``settings`` has no admin DSN), on the test database."""
    config = Path(settings.backup.dir).parent / "pool-cli.toml"
    bouncer = settings.pgbouncer
    text = f'[backup]\ndir = "{settings.backup.dir}"\n'
    if bouncer.admin_dsn:
        text += (
            f'[pgbouncer]\nadmin_dsn = "{bouncer.admin_dsn}"\n'
            f'include_file = "{bouncer.include_file}"\ncommand_timeout = {command_timeout}\n'
            f'log_file = "{bouncer.log_file}"\n'
        )
    config.write_text(text)
    return [sys.executable, "-m", "console", "--config", str(config), "--dsn", dsn, *args]


def run_cli(settings: Settings, dsn: str, *args: str, timeout: float = 120):
    return subprocess.run(
        console_argv(settings, dsn, *args),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


async def test_cli_pool_commands(
    bouncer_service: ConsoleService,
    bouncer_settings: Settings,
    database_dsn: str,
    pgbouncer: LocalPgBouncer,
    su: asyncpg.Connection,
) -> None:
    await bouncer_service.provision("acme")
    cli = bouncer_settings, database_dsn

    shown = await asyncio.to_thread(run_cli, *cli, "pool", "show", "--json", "--interval", "0.2")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [p["database"] for p in data["pools"]] == ["tenant_acme"]
    assert data["pools"][0]["xact_per_s"] is not None

    table = await asyncio.to_thread(run_cli, *cli, "pool", "show", "--interval", "0.2")
    assert "tenant_acme" in table.stdout and "clients" in table.stdout

    bad = await asyncio.to_thread(run_cli, *cli, "pool", "set-size", "acme", "abc")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "goconsole: error: pool size 'abc' is not a whole number: pool size must be 1-50, "
        "reserve 0-50, together at most 50"
    ]
    ok = await asyncio.to_thread(run_cli, *cli, "pool", "set-size", "acme", "8", "--reserve", "1")
    assert ok.returncode == 0, ok.stderr
    assert "pool_size 8, reserve_pool 1" in ok.stdout

    kill = await asyncio.to_thread(run_cli, *cli, "pool", "kill", "acme")
    assert kill.returncode == 2 and "pass --yes" in kill.stderr
    kill = await asyncio.to_thread(run_cli, *cli, "pool", "kill", "acme", "--yes")
    assert kill.returncode == 0, kill.stderr

    for action in ("pause", "resume", "disable", "enable", "reconnect"):
        done = await asyncio.to_thread(run_cli, *cli, "pool", action, "acme")
        assert done.returncode == 0, (action, done.stderr)
    actions = await audit_actions(su, "acme")
    assert actions[-6:] == [
        "pool.kill",
        "pool.pause",
        "pool.resume",
        "pool.disable",
        "pool.enable",
        "pool.reconnect",
    ]
    row = await su.fetchrow(
        "SELECT actor, actor_host FROM public.tenant_audit_log ORDER BY id DESC LIMIT 1"
    )
    assert row is not None and row["actor"] and row["actor_host"]

    missing = await asyncio.to_thread(run_cli, *cli, "pool", "pause", "nosuch")
    assert missing.returncode == 2 and "nosuch" in missing.stderr

    before = await alias_row(pgbouncer, "tenant_acme")
    for args in (("pause", "acme"), ("kill", "acme"), ("set-default", "30"), ("sync",)):
        refused = await asyncio.to_thread(run_cli, *cli, "--read-only", "pool", *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "read-only mode" in refused.stderr, args
    assert await alias_row(pgbouncer, "tenant_acme") == before
    readable = await asyncio.to_thread(
        run_cli, *cli, "--read-only", "pool", "clients", "acme", "--json"
    )
    assert readable.returncode == 0 and json.loads(readable.stdout) == []


async def test_cli_failures_exit_1_watch_on_unreachable_and_clients_without_a_pool(
    bouncer_service: ConsoleService, bouncer_settings: Settings, database_dsn: str
) -> None:
    await bouncer_service.provision("acme")
    await bouncer_service.offboard("acme", timeout=5)
    nopool = await asyncio.to_thread(
        run_cli, bouncer_settings, database_dsn, "pool", "clients", "acme"
    )
    assert nopool.returncode == 1, nopool.stderr
    assert nopool.stderr.strip().splitlines() == [
        "goconsole: error: tenant acme has no pool: PgBouncer has no alias tenant_acme (only "
        "ACTIVE and INACTIVE tenants have one); 'goconsole pool sync' adds missing ones"
    ]
    assert nopool.stdout == ""

    unreachable = dataclasses.replace(
        bouncer_settings,
        pgbouncer=dataclasses.replace(
            bouncer_settings.pgbouncer,
            admin_dsn=f"host=127.0.0.1 port={free_port()} dbname=pgbouncer user=x",
        ),
    )
    watch = await asyncio.to_thread(
        run_cli,
        unreachable,
        database_dsn,
        *("pool", "show", "--watch", "--count", "2", "--interval", "0.1"),
    )
    assert watch.returncode == 1, watch.stderr
    lines = watch.stderr.strip().splitlines()
    assert len(lines) == 2 and "retrying in" in lines[0]
    assert lines[1].startswith("goconsole: error: PgBouncer at x@127.0.0.1:")
    assert "unreachable" in lines[1]


async def test_cli_watch_reports_a_stopped_pgbouncer_and_recovers(
    bouncer_service: ConsoleService,
    bouncer_settings: Settings,
    database_dsn: str,
    pgbouncer: LocalPgBouncer,
) -> None:
    await bouncer_service.provision("acme")
    argv = console_argv(
        bouncer_settings,
        database_dsn,
        *("pool", "show", "--watch", "--json", "--interval", "0.2"),
        command_timeout=1.0,
    )
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
        assert first["pools"][0]["database"] == "tenant_acme"
        pgbouncer.stop()
        try:
            complaint = await asyncio.wait_for(process.stderr.readline(), 60)
            assert b"unreachable" in complaint and b"retrying in" in complaint
        finally:
            pgbouncer.start()
        # drain stale lines until a snapshot from the restarted PgBouncer arrives
        while True:
            line = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
            if line["rates_reset"]:
                break
        assert line["pools"][0]["database"] == "tenant_acme"
        assert process.returncode is None  # still watching
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def test_not_configured_is_a_clear_error(
    service: ConsoleService, database_dsn: str, settings: Settings
) -> None:
    assert not service.pools.configured
    result = await asyncio.to_thread(
        subprocess.run,
        console_argv(settings, database_dsn, "pool", "show"),
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "GOCONSOLE_PGBOUNCER_DSN"},
    )
    assert result.returncode == 2
    assert "PgBouncer is not configured: set [pgbouncer] admin_dsn" in result.stderr
    # the lifecycle without PgBouncer has no pool steps, and each command says so once
    key = f"t{uuid.uuid4().hex[:8]}"
    events: list[StepEvent] = []
    runs = (
        lambda: service.provision(key, sink=events.append),
        lambda: service.provision_many([f"{key}_a", f"{key}_b"], sink=events.append),
        lambda: service.deactivate(key, timeout=5, sink=events.append),
        lambda: service.reactivate(key, sink=events.append),
        lambda: service.offboard(key, timeout=5, sink=events.append),
    )
    for run in runs:
        events.clear()
        await run()
        assert [e.message for e in events if e.message == POOL_STEPS_SKIPPED] == [
            "pgbouncer: not configured — pool steps skipped"
        ]
        assert not [e for e in events if e.step.startswith("pool") and e.phase is not Phase.INFO]
