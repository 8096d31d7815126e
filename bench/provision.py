"""Provisioning throughput: template clone vs alembic, in one run on one throwaway cluster.

    .venv/bin/python bench/provision.py [--tenants 1000] [--concurrency 4] [--pg-bin DIR]

Prints tenants/s for each path end to end (registry row, schema, grants, initial data, access
verification as the app role, audit rows) and the ratio clone/alembic. The alembic path runs one
tenant at a time: alembic's module-global context forbids concurrent upgrades in one process.
The clone path is measured twice: one ``provision`` call per tenant, and the bulk path
(``provision_many``: batches, one message per tenant). Also prints the raw DDL limit: only the
template's DDL per schema on as many connections, as the floor neither clone path can beat. The
raw limit and the bulk path each get a database of their own, so each starts from the same empty
catalog as the per-call path (DDL slows down as pg_class grows).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from console.config import BackupSettings, ClusterSettings, Settings
from console.core.pgserver import LocalCluster, PgBinaries, throwaway_cluster
from console.core.service import ConsoleService


async def provision_all(
    service: ConsoleService, prefix: str, count: int, concurrency: int, use_template: bool
) -> float:
    """Provision ``count`` tenants; return tenants per second."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await service.provision(f"{prefix}{i:05d}", use_template=use_template)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def raw_clone_limit(service: ConsoleService, count: int, concurrency: int) -> float:
    """The floor under the clone path: only the template DDL, per schema, on ``concurrency``
    connections (no registry, grants, data, verification or audit)."""
    async with service.db.acquire() as conn:
        ddl = await service.template.ddl(conn)
    assert not isinstance(ddl, str), ddl
    queue = [f"raw_{i:05d}" for i in range(count)]

    async def worker() -> None:
        async with service.db.acquire() as conn:
            while queue:
                name = queue.pop()
                async with conn.transaction():
                    await conn.execute(ddl.for_tenant(name, uuid.uuid4()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def bulk_provision(service: ConsoleService, count: int, concurrency: int) -> float:
    """Provision ``count`` tenants through the bulk path; return tenants per second."""
    keys = [f"bulk_{i:05d}" for i in range(count)]
    started = time.perf_counter()
    report = await service.provision_many(keys, concurrency=concurrency)
    rate = count / (time.perf_counter() - started)
    if report.done != count:
        raise RuntimeError(f"bulk path left tenants behind: {report.unsuccessful()[:5]}")
    return rate


async def run(cluster: LocalCluster, tenants: int, concurrency: int, work: Path) -> None:
    """Every path against its database; prints the figures."""
    admin = await asyncpg.connect(cluster.dsn())
    for name in ("bench", "bench_raw", "bench_bulk"):
        await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    settings = dataclasses.replace(
        Settings(),
        clusters={"primary": ClusterSettings(pool_max_size=2 * concurrency + 2)},
        backup=BackupSettings(dir=str(work / "backups")),
    )
    # The raw limit and the bulk path get a database each, so every path starts from the same
    # (empty) catalog: DDL slows down as pg_class grows, and 1,000 schemas add some 40,000 rows.
    async with ConsoleService(settings, dsn=cluster.dsn("bench_raw")) as service:
        await service.init()
        await service.provision("warmup")  # loads the template DDL once
        raw = await raw_clone_limit(service, tenants, concurrency)
    async with ConsoleService(settings, dsn=cluster.dsn("bench_bulk")) as service:
        await service.init()
        await service.provision("warmup")
        bulk = await bulk_provision(service, tenants, concurrency)
    async with ConsoleService(settings, dsn=cluster.dsn("bench")) as service:
        await service.init()
        await service.provision("warmup")
        clone = await provision_all(service, "clone_", tenants, concurrency, True)
        alembic = await provision_all(service, "alembic_", tenants, 1, False)
        active = len(await service.tenants())
    print(f"PostgreSQL {cluster.binaries.major_version()}, {tenants} tenants per path")
    print(f"clone path   ({concurrency} concurrent): {clone:8.1f} tenants/s")
    print(f"clone path, bulk, {concurrency} concurrent: {bulk:8.1f} tenants/s")
    print(f"alembic path (1 at a time):    {alembic:8.1f} tenants/s")
    print(f"raw DDL limit ({concurrency} concurrent): {raw:8.1f} schemas/s (template DDL only)")
    print(f"ratio clone/alembic:           {clone / alembic:8.2f}x   (target >= 3x)")
    print(f"ratio clone/raw DDL limit:     {clone / raw:8.2f}")
    print(f"ratio bulk/raw DDL limit:      {bulk / raw:8.2f}")
    print(f"clone path target >= 100 tenants/s: {'met' if clone >= 100 else 'MISSED'}")
    print(f"bulk path target >= 100 tenants/s:  {'met' if bulk >= 100 else 'MISSED'}")
    print(f"tenants ACTIVE at the end:     {active} (in the clone/alembic database)")


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    with throwaway_cluster(binaries, {"max_connections": "100"}, "goconsole-bench-") as (
        cluster,
        work,
    ):
        asyncio.run(run(cluster, args.tenants, args.concurrency, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
