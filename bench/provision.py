"""Provisioning throughput: template clone (bulk and per call) vs alembic vs the raw DDL floor.

    .venv/bin/python bench/provision.py [--tenants 1000] [--rounds 4] [--concurrency 4]
                                        [--pg-bin DIR]

Prints tenants/s end to end (registry row, schema, grants, initial data, access verification as
the app role, one audit row per step) for the clone path used two ways — the bulk path
(``tenants provision K1 K2 …``: batches, one message and one commit per tenant) and one
``provision`` call per tenant — against the raw limit (only the template's DDL per schema, one
transaction each, on as many connections: the floor neither clone path can beat) and against
alembic (one tenant at a time: alembic's module-global context forbids concurrent upgrades in one
process; sampled). Each path has a database of its own and they run in interleaved rounds with a
rotating order, so every path sees the same catalog growth and the same disk weather.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from console.config import BackupSettings, ClusterSettings, Settings
from console.core.binaries import PgBinaries
from console.core.service import ConsoleService
from console.devenv.postgres import LocalCluster, throwaway_cluster


async def provision_all(
    service: ConsoleService, prefix: str, count: int, concurrency: int, use_template: bool
) -> float:
    """Provision ``count`` tenants, one ``provision`` call each; return tenants per second."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await service.provision(f"{prefix}{i:05d}", use_template=use_template)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def bulk_provision(
    service: ConsoleService, prefix: str, count: int, concurrency: int
) -> float:
    """Provision ``count`` tenants through the bulk path; return tenants per second."""
    keys = [f"{prefix}{i:05d}" for i in range(count)]
    started = time.perf_counter()
    report = await service.provision_many(keys, concurrency=concurrency)
    rate = count / (time.perf_counter() - started)
    if report.done != count:
        raise RuntimeError(f"bulk path left tenants behind: {report.unsuccessful()[:5]}")
    return rate


async def raw_clone_limit(
    service: ConsoleService, prefix: str, count: int, concurrency: int
) -> float:
    """The floor under the clone path: only the template DDL, per schema, one transaction
    each, on ``concurrency`` connections (no registry, grants, data, verification or audit)."""
    async with service.db.acquire() as conn:
        ddl = await service.template.ddl(conn)
    assert not isinstance(ddl, str), ddl
    queue = [f"{prefix}{i:05d}" for i in range(count)]

    async def worker() -> None:
        async with service.db.acquire() as conn:
            while queue:
                name = queue.pop()
                async with conn.transaction():
                    await conn.execute(ddl.for_tenant(name, uuid.uuid4()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


PATHS = ("raw", "bulk", "per_call")
LABELS = {
    "raw": "raw template DDL (floor)",
    "bulk": "clone, bulk (provision K1 K2 …)",
    "per_call": "clone, one provision call each",
}


async def run(
    cluster: LocalCluster, tenants: int, rounds: int, concurrency: int, work: Path
) -> None:
    """Every path in its own database, in interleaved rounds; prints the figures."""
    admin = await asyncpg.connect(cluster.dsn())
    for name in (*PATHS, "alembic"):
        await admin.execute(f"CREATE DATABASE bench_{name}")
    await admin.close()
    settings = dataclasses.replace(
        Settings(),
        clusters={"primary": ClusterSettings(pool_max_size=2 * concurrency + 2)},
        backup=BackupSettings(dir=str(work / "backups")),
    )
    chunk = tenants // rounds
    rates: dict[str, list[float]] = {path: [] for path in PATHS}
    async with contextlib.AsyncExitStack() as stack:
        services = {}
        for path in PATHS:
            service = ConsoleService(settings, dsn=cluster.dsn(f"bench_{path}"))
            services[path] = await stack.enter_async_context(service)
            await service.init()
            await service.provision("warmup")  # loads the template DDL once
        for r in range(rounds):
            # Each path grows its own catalog by the same chunk per round (DDL slows down as
            # pg_class grows); the order rotates so no path always runs first or last.
            order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]
            for path in order:
                service, prefix = services[path], f"r{r}_"
                if path == "raw":
                    rate = await raw_clone_limit(service, prefix, chunk, concurrency)
                elif path == "bulk":
                    rate = await bulk_provision(service, prefix, chunk, concurrency)
                else:
                    rate = await provision_all(service, prefix, chunk, concurrency, True)
                rates[path].append(rate)
            line = ", ".join(f"{p} {rates[p][-1]:.1f}/s" for p in PATHS)
            print(f"round {r + 1} ({chunk} tenants per path): {line}", flush=True)
        active = {p: len(await services[p].tenants()) for p in ("bulk", "per_call")}
    async with ConsoleService(settings, dsn=cluster.dsn("bench_alembic")) as service:
        await service.init()
        sample = max(50, tenants // 10)
        alembic = await provision_all(service, "alembic_", sample, 1, False)
    overall = {p: tenants_per_s(rates[p]) for p in PATHS}
    ratio = [b / r for b, r in zip(rates["bulk"], rates["raw"], strict=True)]
    print()
    print(
        f"PostgreSQL {cluster.binaries.major_version()}, {chunk * rounds} tenants per path in "
        f"{rounds} interleaved rounds, {concurrency} concurrent, fsync on"
    )
    for path in PATHS:
        listing = ", ".join(f"{x:.0f}" for x in rates[path])
        print(f"  {LABELS[path]:34s} {overall[path]:7.1f} /s  [{listing}]")
    print(f"  {'alembic, one at a time':34s} {alembic:7.1f} /s  ({sample} tenants)")
    print(
        f"  bulk / raw floor, per round: {', '.join(f'{x:.2f}' for x in ratio)}"
        f" (median {statistics.median(ratio):.2f})"
    )
    for path in ("bulk", "per_call"):
        met = "met" if overall[path] >= 100 else "MISSED"
        print(
            f"  {LABELS[path]}: {overall[path] / alembic:.2f}x alembic (target >= 3x), "
            f"{overall[path]:.1f}/s (target >= 100/s: {met})"
        )
    print(f"  tenants ACTIVE at the end: {active} (warm-up tenant included)")


def tenants_per_s(rates: list[float]) -> float:
    """Overall rate of equal chunks run at ``rates``: total tenants over total time."""
    return len(rates) / sum(1 / r for r in rates)


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per path")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    with throwaway_cluster(binaries, {"max_connections": "100"}, "goconsole-bench-") as (
        cluster,
        work,
    ):
        asyncio.run(run(cluster, args.tenants, args.rounds, args.concurrency, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
