"""Application traffic through a real PgBouncer across a restore's switch: clients wait during
the pause; none sees a half-restored schema or an error."""

from __future__ import annotations

import asyncio

import asyncpg
from test_backups import add_customers, backup
from test_pools import tenant_client

from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer


async def test_traffic_continues_across_the_switch(
    bouncer_service: ConsoleService, pgbouncer: LocalPgBouncer, su: asyncpg.Connection
) -> None:
    tenant = await bouncer_service.provision("acme")
    await add_customers(su, tenant, "Ann", "Bob")
    record = await backup(bouncer_service, "acme")
    await add_customers(su, tenant, "Cid", "Dee", "Eve")
    clients = [await tenant_client(pgbouncer, "acme") for _ in range(4)]
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()
    reached = asyncio.Event()
    wanted = [8]  # queries seen before ``reached`` is set

    async def traffic(conn: asyncpg.Connection) -> None:
        while not stop.is_set():
            try:
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id)
                    )
                    seen.append(await conn.fetchval("SELECT count(*) FROM tenant_acme.customers"))
                if len(seen) >= wanted[0]:
                    reached.set()
            except Exception as exc:  # every error is a failure of the test
                errors.append(exc)
                return

    tasks = [asyncio.create_task(traffic(c)) for c in clients]
    try:
        await asyncio.wait_for(reached.wait(), 30)  # traffic runs before the restore
        report = await bouncer_service.backups.restore("acme", backup_id=str(record.id), timeout=10)
        reached.clear()
        switched_at = wanted[0] = len(seen)
        wanted[0] += 20
        await asyncio.wait_for(reached.wait(), 30)  # and after it
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for conn in clients:
            await conn.close()
    assert errors == []
    assert report.switch_window_ms is not None  # the pool was paused and resumed
    assert set(seen) <= {2, 5}  # the live rows or the restored ones, nothing in between
    assert seen[0] == 5 and set(seen[switched_at:]) == {2}
    assert await bouncer_service.pools.pool_state(tenant.schema_name) == "active"
