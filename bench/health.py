"""One full health check against a cluster with many tenants and a PgBouncer with many pools.

    .venv/bin/python bench/health.py [--tenants 2000] [--aliases 500] [--runs 30] [--pg-bin DIR]

Starts a throwaway cluster, runs ``init``, provisions ``--tenants`` tenants (template clone),
starts a real PgBouncer with ``--aliases`` tenant aliases, then, in this process, times
``service.health.check()`` (every check: SELECT 1, server facts, replication, slots,
PgBouncer's SHOW POOLS, every tenant's backup summary, the scheduler) ``--runs`` times, median
and p95, against the baseline of a bare ``SELECT 1`` on the same pool in the same process.

Target: a full check < 200 ms median at 2,000 tenants and 500 pools.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import statistics
import sys
import time
from pathlib import Path

from console.config import PgBouncerSettings, Settings
from console.core.binaries import PgBinaries
from console.core.pools.include_file import Alias, IncludeFile
from console.core.service import ConsoleService
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import LocalCluster, server_os_user, throwaway_cluster

TARGET_MS = 200.0


async def measure(cluster: LocalCluster, bouncer: LocalPgBouncer, args: argparse.Namespace) -> None:
    settings = dataclasses.replace(
        Settings(), pgbouncer=PgBouncerSettings(admin_dsn=bouncer.admin_dsn)
    )
    async with ConsoleService(settings, dsn=cluster.dsn()) as service:
        await service.init()
        started = time.perf_counter()
        keys = [f"t{i:05d}" for i in range(args.tenants)]
        report = await service.provision_many(keys)
        print(
            f"provisioned {len(keys)} tenants in {time.perf_counter() - started:.1f} s "
            f"({report.failed} failed)"
        )
        await service.health.check()  # warm: pool connections, PgBouncer admin connection
        check_ms, select1_ms = [], []
        for _ in range(args.runs):
            tick = time.perf_counter()
            result = await service.health.check()
            check_ms.append((time.perf_counter() - tick) * 1000)
            tick = time.perf_counter()
            await service.ping()
            select1_ms.append((time.perf_counter() - tick) * 1000)
        pools = result.check("pgbouncer")
        backups = result.check("backups")
        print(
            f"last check: {result.state.value}; pgbouncer {pools.shown if pools else '-'} "
            f"({pools.detail if pools else '-'}); backups {backups.shown if backups else '-'}"
        )
        med, p95 = statistics.median(check_ms), statistics.quantiles(check_ms, n=20)[18]
        base = statistics.median(select1_ms)
        verdict = "met" if med < TARGET_MS else "MISSED"
        print(
            f"health check ({len(result.checks)} checks): median {med:.1f} ms, p95 {p95:.1f} ms; "
            f"bare SELECT 1 median {base:.2f} ms (check/SELECT 1 {med / base:.0f}x); "
            f"target < {TARGET_MS:g} ms: {verdict}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--aliases", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    settings = {"fsync": "off", "synchronous_commit": "off", "max_connections": "200"}
    with throwaway_cluster(binaries, settings, "goconsole-bench-") as (cluster, work):
        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        owner = server_os_user()
        if owner is not None:
            shutil.chown(bouncer_dir, owner, owner)
        bouncer = LocalPgBouncer(bouncer_dir, cluster.port, users=("postgres",))
        include = IncludeFile(bouncer_dir / "tenants.ini")
        with include.editing() as aliases:
            for i in range(args.aliases):
                name = f"tenant_t{i:05d}"
                aliases[name] = Alias(name, "127.0.0.1", cluster.port, "postgres", 4, 1)
        bouncer.start()
        try:
            print(f"PgBouncer on port {bouncer.port}: {args.aliases} aliases")
            asyncio.run(measure(cluster, bouncer, args))
        finally:
            bouncer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
