"""The console's PgBouncer polling: snapshot latency and the cost of polling under load.

    .venv/bin/python bench/pool.py [--aliases 500] [--loaded 50] [--clients 200]
                                   [--seconds 30] [--pg-bin DIR]

Starts a throwaway cluster and a real PgBouncer (seed settings, transaction pooling) in front of
it, writes ``--aliases`` tenant aliases through the console's include file and RELOADs, then
starts ``--clients`` asyncpg clients (``statement_cache_size=0``) in a separate process, spread
over the first ``--loaded`` aliases, each running short transactions with a tenant id set per
transaction. Then, in this process, it prints:

* snapshot latency: one full console snapshot (SHOW POOLS + STATS + DATABASES, parsed, rated and
  sorted), median and p95 of 50, against the baseline of the same three SHOW commands sent raw
  over one psycopg connection with nothing parsed, in the same process;
* polling cost: the console's PoolMonitor polling at 1 s for ``--seconds``: admin queries/s and
  this process's CPU time over wall time (% of one core), against the baseline of an idle event
  loop sleeping for the same time.

Targets: a full snapshot < 50 ms at 500 pools; polling at 1 s < 2 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from console.config import PgBouncerSettings
from console.core.binaries import PgBinaries
from console.core.pools.admin import AdminConnection
from console.core.pools.admin_spec import AdminSpec
from console.core.pools.include_file import Alias, IncludeFile
from console.core.pools.monitor import PoolMonitor
from console.devenv.pgbouncer import LocalPgBouncer
from console.devenv.postgres import server_os_user, throwaway_cluster

TARGET_SNAPSHOT_MS = 50.0
TARGET_POLL_CPU_PCT = 2.0
APP_USER = "bench_app"


def run_load(dsns: list[str], stop: Any, report: Any) -> None:
    """Client process: one asyncpg client per DSN, short transactions until ``stop`` is set;
    sends (transactions, errors, closes that had to be forced) through the ``report`` pipe.
    Every client task is awaited to its end, so none leaves an exception unretrieved."""

    totals = {"done": 0, "errors": 0, "forced": 0}
    stopping = asyncio.Event()

    async def close(conn: asyncpg.Connection) -> None:
        """Close politely; when that fails or times out (a busy PgBouncer), drop the socket."""
        try:
            await conn.close(timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # TimeoutError too
            conn.terminate()
            totals["forced"] += 1

    async def client(dsn: str) -> None:
        while not stopping.is_set():
            try:
                conn = await asyncpg.connect(dsn, statement_cache_size=0)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                totals["errors"] += 1
                await asyncio.sleep(0.5)
                continue
            try:
                while not stopping.is_set():
                    async with conn.transaction():
                        await conn.execute(
                            "SELECT set_config('app.current_tenant_id', $1, true)", dsn[-8:]
                        )
                        await conn.fetchval("SELECT count(*) FROM pg_class WHERE oid < $1", 100)
                    totals["done"] += 1
                    await asyncio.sleep(0.05)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                totals["errors"] += 1
            finally:
                await close(conn)

    async def main() -> None:
        tasks = [asyncio.create_task(client(d)) for d in dsns]
        await asyncio.to_thread(stop.wait)
        stopping.set()  # clients finish their transaction and leave (cancelling mid-query
        _, late = await asyncio.wait(tasks, timeout=30)  # would send cancel requests)
        for task in late:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        totals["errors"] += sum(isinstance(o, BaseException) for o in outcomes)
        report.send((totals["done"], totals["errors"], totals["forced"]))

    asyncio.run(main())


async def raw_snapshot(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Baseline: the three SHOW commands, rows fetched and dropped."""
    for what in (b"SHOW POOLS", b"SHOW STATS", b"SHOW DATABASES"):
        cur = await conn.execute(what)
        await cur.fetchall()


async def measure(bouncer: LocalPgBouncer, args: argparse.Namespace) -> None:
    settings = PgBouncerSettings(
        admin_dsn=bouncer.admin_dsn, include_file=str(bouncer.include_file)
    )
    admin = AdminConnection(AdminSpec.resolve(settings))
    monitor = PoolMonitor(admin)
    await monitor.snapshot()
    raw = await psycopg.AsyncConnection.connect(
        bouncer.admin_dsn, autocommit=True, prepare_threshold=None
    )

    console_ms, raw_ms = [], []
    for _ in range(50):
        started = time.perf_counter()
        await raw_snapshot(raw)
        raw_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        snap = await monitor.snapshot()
        console_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    busy = [v for v in snap.pools if v.pool.cl_active or v.pool.cl_waiting]
    print(
        f"pools in snapshot: {len(snap.pools)} ({len(busy)} with clients), clients "
        f"{snap.clients}/{snap.limits.max_client_conn}, waiting {snap.waiting}, "
        f"servers {snap.servers}"
    )
    med, p95 = statistics.median(console_ms), statistics.quantiles(console_ms, n=20)[18]
    raw_med = statistics.median(raw_ms)
    verdict = "met" if med < TARGET_SNAPSHOT_MS else "MISSED"
    print(
        f"snapshot: median {med:.1f} ms, p95 {p95:.1f} ms; raw SHOW x3 median {raw_med:.1f} ms "
        f"(console/raw {med / raw_med:.2f}x); target < {TARGET_SNAPSHOT_MS:g} ms: {verdict}"
    )

    idle_cpu = await cpu_share(args.seconds, None)
    queries_before = admin.queries
    poll_cpu = await cpu_share(args.seconds, monitor)
    rate = (admin.queries - queries_before) / args.seconds
    verdict = "met" if poll_cpu < TARGET_POLL_CPU_PCT else "MISSED"
    print(
        f"polling at 1 s for {args.seconds:g} s: {rate:.1f} admin queries/s, CPU {poll_cpu:.2f} % "
        f"of one core (idle loop baseline {idle_cpu:.2f} %, difference "
        f"{poll_cpu - idle_cpu:.2f} points); target < {TARGET_POLL_CPU_PCT:g} %: {verdict}"
    )
    await raw.close()
    await admin.close()


async def cpu_share(seconds: float, monitor: PoolMonitor | None) -> float:
    """This process's CPU over wall time while polling every second (or just sleeping)."""
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        tick = time.perf_counter()
        if monitor is not None:
            await monitor.snapshot()
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    return 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--aliases", type=int, default=500)
    parser.add_argument("--loaded", type=int, default=50)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    settings = {"fsync": "off", "synchronous_commit": "off", "max_connections": "400"}
    with throwaway_cluster(binaries, settings, "goconsole-bench-") as (cluster, work):
        subprocess.run(
            [str(binaries.tool("psql")), cluster.dsn(), "-qc", f"CREATE ROLE {APP_USER} LOGIN"],
            check=True,
        )
        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        owner = server_os_user()
        if owner is not None:
            shutil.chown(bouncer_dir, owner, owner)
        bouncer = LocalPgBouncer(bouncer_dir, cluster.port, users=("postgres", APP_USER))
        include = IncludeFile(bouncer_dir / "tenants.ini")
        with include.editing() as aliases:
            for i in range(args.aliases):
                name = f"tenant_t{i:04d}"
                aliases[name] = Alias(name, "127.0.0.1", cluster.port, "postgres", 4, 1)
        bouncer.start()
        try:
            print(
                f"PgBouncer 1.18 on port {bouncer.port}: {args.aliases} aliases, "
                f"{args.clients} clients on the first {args.loaded}"
            )
            dsns = [
                bouncer.dsn(f"tenant_t{i % args.loaded:04d}", APP_USER) for i in range(args.clients)
            ]
            ctx = multiprocessing.get_context("spawn")
            stop = ctx.Event()
            receive, send = ctx.Pipe(duplex=False)
            load = ctx.Process(target=run_load, args=(dsns, stop, send))
            load.start()
            time.sleep(8)  # clients connected and running
            try:
                asyncio.run(measure(bouncer, args))
            finally:
                stop.set()
            done, errors, forced = receive.recv() if receive.poll(60) else (-1, -1, -1)
            load.join(10)
            if load.is_alive():
                load.terminate()
            print(
                f"load: {done} transactions by {args.clients} clients, {errors} errors, "
                f"{forced} close(s) forced after a timeout"
            )
        finally:
            bouncer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
