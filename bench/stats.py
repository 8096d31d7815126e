"""Schema statistics collection for a large fleet, against the bare catalog query.

    .venv/bin/python bench/stats.py [--tenants 10000] [--rounds 5] [--pg-bin DIR]   # ~5 min

On a throwaway cluster (server settings at their defaults, fsync on), in a fresh database:
``init``, then ``--tenants`` ACTIVE tenants built from a cloned schema (``bench/migrate.py``'s
``build_fleet``; untimed, 2-4 minutes for 10,000), with a few rows in each tenant's categories
table and ANALYZE, so row estimates are not all zero. Then ``--rounds`` times, interleaved so both
share the machine's weather, after a checkpoint (which of the first two goes first alternates;
an untimed catalog pass before the rounds opens every relation's files once):

- bare: the catalog query alone, sizes included (``tenants.stats.schema_stats``, what the
  tenants screen reads): one grouped pass over ``pg_class`` returning every tenant's figures;
- collect: ``service.stats.collect()`` end to end (the same pass plus each table's row estimate
  as JSON, joined to the registry, inserted into ``schema_stats``, retention, commit);
- growth: ``service.stats.growth()``, the one query the tenants screen reads the Growth 7d
  column with (every tenant's newest figures and the run a week before).

Prints each figure's median and rounds, collect / bare as the median of per-round ratios, and
the issue's target (collection < 5 s for 10,000 tenants). Results: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from migrate import BUILD_CONNECTIONS, build_fleet, in_parallel, settle

from console.config import BackupSettings, Settings
from console.core.binaries import PgBinaries
from console.core.service import ConsoleService
from console.core.tenants.stats import schema_stats
from console.devenv.postgres import LocalCluster, throwaway_cluster

TARGET_S = 5.0
ROWS_PER_TENANT = 20
FILL_BATCH = 200


async def fill(dsn: str, schemas: list[str]) -> None:
    """A few categories per tenant, then ANALYZE, so the row estimates are real figures."""

    def one(schema: str) -> str:
        return (
            f"INSERT INTO \"{schema}\".categories (name) SELECT 'c' || g "
            f"FROM generate_series(1, {ROWS_PER_TENANT}) g;\n"
            f'ANALYZE "{schema}".categories;\n'
        )

    batches = [
        "".join(one(s) for s in schemas[i : i + FILL_BATCH])
        for i in range(0, len(schemas), FILL_BATCH)
    ]
    await in_parallel(dsn, BUILD_CONNECTIONS, batches)


async def run(cluster: LocalCluster, work: Path, count: int, rounds: int) -> dict[str, list]:
    admin = await asyncpg.connect(cluster.dsn())
    await admin.execute("CREATE DATABASE bench_stats")
    await admin.close()
    dsn = cluster.dsn("bench_stats")
    settings = dataclasses.replace(Settings(), backup=BackupSettings(dir=str(work / "backups")))
    figures: dict[str, list] = {"bare": [], "collect": [], "growth": [], "ratio": []}
    async with ConsoleService(settings, dsn=dsn) as service:
        started = time.perf_counter()
        await service.init()
        fleet = await build_fleet(service, cluster.binaries, dsn, count)
        await fill(dsn, [t.schema for t in fleet])
        print(f"setup: {count} tenants in {time.perf_counter() - started:.1f}s", flush=True)
        # Collections an hour apart, ending now, so the last rounds find a run a week before.
        stamp = datetime.now(UTC) - timedelta(days=7, hours=rounds)
        async with service.db.acquire() as conn:
            await schema_stats(conn, with_sizes=True)  # untimed: the first pass opens files

        async def bare() -> float:
            async with service.db.acquire() as conn:
                t0 = time.perf_counter()
                found = await schema_stats(conn, with_sizes=True)
                took = time.perf_counter() - t0
            assert len(found) == count, len(found)
            return took

        async def collect(when: datetime) -> float:
            t0 = time.perf_counter()
            collected = await service.stats.collect(now=when)
            took = time.perf_counter() - t0
            assert collected.tenants == count, collected
            return took

        for n in range(rounds):
            await settle(dsn)
            when = stamp if n == 0 else datetime.now(UTC) - timedelta(hours=rounds - n)
            if n % 2:  # alternate which goes first after the checkpoint
                collect_s, bare_s = await collect(when), await bare()
            else:
                bare_s, collect_s = await bare(), await collect(when)
            t0 = time.perf_counter()
            growth = await service.stats.growth()
            growth_s = time.perf_counter() - t0
            assert len(growth) == count, len(growth)
            figures["bare"].append(bare_s)
            figures["collect"].append(collect_s)
            figures["growth"].append(growth_s)
            figures["ratio"].append(collect_s / bare_s)
            print(
                f"round {n + 1}: bare {bare_s:.3f}s, collect {collect_s:.3f}s "
                f"(x{collect_s / bare_s:.2f}), growth read {growth_s:.3f}s",
                flush=True,
            )
    return figures


def report(figures: dict[str, list], count: int, major: int) -> None:
    def line(name: str) -> str:
        values = figures[name]
        rounds = ", ".join(f"{v:.3f}" for v in values)
        return f"{statistics.median(values):.3f}s [{rounds}]"

    collect_s = statistics.median(figures["collect"])
    verdict = "met" if collect_s < TARGET_S else "NOT met"
    print(f"\nPostgreSQL {major}, {count} tenants, {len(figures['bare'])} rounds (median [rounds])")
    print(f"  bare catalog query (sizes): {line('bare')}")
    print(f"  collect (pass + insert):    {line('collect')}")
    print(f"  growth read (all tenants):  {line('growth')}")
    ratios = ", ".join(f"{v:.2f}" for v in figures["ratio"])
    print(f"  collect / bare: {statistics.median(figures['ratio']):.2f} [{ratios}]")
    print(f"  target: collection < {TARGET_S:g} s for 10,000 tenants: {verdict}")


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    if args.tenants < 1 or args.rounds < 1:
        parser.error("--tenants and --rounds must be 1 or more")
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    # No shutdown checkpoint: with 10,000 tenants' files it can take longer than pg_ctl waits.
    with throwaway_cluster(
        binaries, {"max_connections": "100"}, "goconsole-bench-", stop_mode="immediate"
    ) as (cluster, work):
        figures = asyncio.run(run(cluster, work, args.tenants, args.rounds))
    report(figures, args.tenants, binaries.major_version())
    return 0


if __name__ == "__main__":
    sys.exit(main())
