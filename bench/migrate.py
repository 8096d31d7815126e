"""Migrating every tenant: the console's `migrate all` against alembic and the raw SQL limit.

    .venv/bin/python bench/migrate.py [--tenants 2000,10000] [--concurrency 2,4] [--rounds 3]
                                      [--alembic-sample 200] [--breakdown] [--pg-bin DIR]

For each fleet size, on a throwaway cluster (server settings at their defaults, fsync on, apart
from max_connections), in a fresh database:

1. setup (untimed): ``init``, one tenant provisioned normally, then the fleet built directly at
   revision 0003 -- registry rows ACTIVE in ``public.tenants``, schemas cloned from the
   ``pg_dump`` (grants included) of a schema alembic built at 0003, over four connections,
   twenty tenants per transaction;
2. ``migrate status`` (``svc.migrations.status()``) with every tenant behind;
3. ``--rounds`` times, for each concurrency N, each pass after putting the fleet back at 0003
   (untimed), a checkpoint and a vacuum of the busiest catalogs:
   (c) the raw limit -- the rendered 0003 -> head SQL executed per tenant over N open asyncpg
   connections, nothing else, once in an explicit transaction (BEGIN, SQL, COMMIT) and once as
   one message (one implicit transaction, one round trip);
   [--breakdown: the console's own per-tenant scripts over raw connections, without the
   runner;]
   (a) the console's ``migrate all`` (``plan()`` + ``run()`` end to end: control tree,
   template, run records, per-tenant locks and checks, audit rows);
4. ``migrate status`` and a no-op ``migrate all`` with every tenant at head: on the warm
   service, on a fresh service (new connections: cold backend caches) and through the CLI (a
   new process, as an operator runs it);
5. (b) sequential alembic upgrades (``AlembicRunner.upgrade_tenant``) of ``--alembic-sample``
   tenants, as tenants/s.

Prints tenants/s for each (median of the rounds), (a)/(c) as the median of per-round ratios
against the faster raw variant, (a)/(b), and the issue's targets. On this machine (2 cores,
shared with other work) ``--tenants 2000`` takes about 3 minutes and the default
``--tenants 2000,10000`` about 12 (building the 10,000 tenants is 2-4 minutes of it). Results:
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from console.config import BackupSettings, ClusterSettings, Settings
from console.core.binaries import PgBinaries
from console.core.events import StepEvent
from console.core.identifiers import qualified, quote_ident, retarget
from console.core.migrations.apply import tenant_script
from console.core.migrations.plan import RENDER_SCHEMA, RENDER_TENANT_ID, render_sql
from console.core.migrations.run import RunProgress
from console.core.migrations.tree import head_revision
from console.core.service import ConsoleService
from console.core.tenants.schema import grant_access
from console.core.tenants.template import clean_dump
from console.devenv.postgres import LocalCluster, throwaway_cluster

FROM_REV = "0003_unique_customer_email"
BENCH_TEMPLATE = "bench_template_r3"
BENCH_TEMPLATE_ID = uuid.UUID(int=0)
BUILD_CONNECTIONS = 4
BUILD_BATCH = 20
RESET_BATCH = 100

# The targets on this machine.
TARGET_VS_RAW = 0.8
TARGET_VS_ALEMBIC = 5.0
TARGET_NOOP_S = 3.0
TARGET_STATUS_S = 2.0


@dataclasses.dataclass(frozen=True)
class FleetTenant:
    id: uuid.UUID
    key: str
    schema: str


@dataclasses.dataclass
class SizeResult:
    tenants: int
    setup_s: float = 0.0
    status_behind_s: float = 0.0
    status_head_s: float = 0.0
    status_cold_s: float = 0.0
    noop_s: float = 0.0
    noop_plan_s: float = 0.0
    noop_cold_s: float = 0.0
    cli_status_s: float = 0.0
    cli_noop_s: float = 0.0
    # concurrency -> one figure per round (tenants/s)
    raw_tx: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    raw_msg: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    console: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    console_tenant_phase: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    script: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    alembic: float = 0.0
    alembic_sample: int = 0


def _discard_progress(_state: RunProgress) -> None:
    pass


def _discard_event(_event: StepEvent) -> None:
    pass


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def in_parallel(dsn: str, connections: int, jobs: list[str]) -> None:
    """Execute each SQL text of ``jobs`` as one message (one implicit transaction) over
    ``connections`` connections pulling from a shared queue (setup and resets, untimed)."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    queue = list(reversed(jobs))

    async def worker(conn: asyncpg.Connection) -> None:
        while queue:
            await conn.execute(queue.pop())

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()


async def dump_schema(binaries: PgBinaries, dsn: str, schema: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(binaries.tool("pg_dump")),
        "--schema-only",
        "--no-owner",
        "--schema",
        schema,
        "--dbname",
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {err.decode().strip()}")
    return clean_dump(out.decode())


async def build_fleet(
    service: ConsoleService, binaries: PgBinaries, dsn: str, count: int
) -> list[FleetTenant]:
    """``count`` ACTIVE tenants at FROM_REV, cloned from a schema built by alembic at FROM_REV."""
    await asyncio.to_thread(
        service.alembic.upgrade_tenant, BENCH_TEMPLATE, str(BENCH_TEMPLATE_ID), FROM_REV
    )
    async with service.db.acquire() as conn:
        await grant_access(conn, BENCH_TEMPLATE, service.app_role)
    ddl = await dump_schema(binaries, dsn, BENCH_TEMPLATE)
    fleet = [
        FleetTenant(uuid.uuid4(), f"bench_{i:05d}", f"tenant_bench_{i:05d}") for i in range(count)
    ]
    async with service.db.acquire() as conn:
        await conn.execute(
            "INSERT INTO public.tenants (id, key, schema_name, display_name, status) "
            "SELECT i, k, s, k, 'ACTIVE' FROM unnest($1::uuid[], $2::text[], $3::text[]) "
            "AS x(i, k, s)",
            [t.id for t in fleet],
            [t.key for t in fleet],
            [t.schema for t in fleet],
        )

    def one(tenant: FleetTenant) -> str:
        return retarget(ddl, BENCH_TEMPLATE, tenant.schema, BENCH_TEMPLATE_ID, tenant.id) + (
            f"INSERT INTO {qualified(tenant.schema, 'schema_version')} (version_num) "
            f"VALUES ('{FROM_REV}');\n"
        )

    batches = [
        "".join(one(t) for t in fleet[i : i + BUILD_BATCH])
        for i in range(0, len(fleet), BUILD_BATCH)
    ]
    await in_parallel(dsn, BUILD_CONNECTIONS, batches)
    async with service.db.acquire() as conn:
        await conn.execute(f"DROP SCHEMA {quote_ident(BENCH_TEMPLATE)} CASCADE")
    return fleet


async def reset(dsn: str, fleet: list[FleetTenant]) -> None:
    """Put ``fleet`` back at FROM_REV (head -> 0003: drop the 0004 index, version row)."""

    def one(t: FleetTenant) -> str:
        return (
            f"DROP INDEX {qualified(t.schema, 'idx_orders_placed_at')};\n"
            f"UPDATE {qualified(t.schema, 'schema_version')} SET version_num = '{FROM_REV}';\n"
        )

    batches = [
        "".join(one(t) for t in fleet[i : i + RESET_BATCH])
        for i in range(0, len(fleet), RESET_BATCH)
    ]
    await in_parallel(dsn, BUILD_CONNECTIONS, batches)
    await settle(dsn)


async def settle(dsn: str) -> None:
    """Checkpoint and clean the catalogs so each timed pass starts alike."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "VACUUM pg_catalog.pg_class, pg_catalog.pg_index, pg_catalog.pg_depend, "
            "pg_catalog.pg_attribute"
        )
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def raw_pass(
    dsn: str, fleet: list[FleetTenant], connections: int, explicit_transaction: bool
) -> float:
    """(c): the rendered SQL per tenant, one transaction each, over ``connections`` already
    open, nothing else (the SQL is rewritten per tenant before the clock starts); tenants/s."""
    sql = render_sql(FROM_REV, head_revision("tenant"))
    jobs = [retarget(sql, RENDER_SCHEMA, t.schema, RENDER_TENANT_ID, t.id) for t in fleet]
    return await execute_pass(dsn, jobs, connections, explicit_transaction)


async def script_pass(service: ConsoleService, dsn: str, connections: int) -> float:
    """The console's own per-tenant scripts (lock timeout, advisory lock, revision check, SQL)
    over raw connections, without the runner around them: splits (a)-(c) into the script and
    the rest (planning, batched records, bookkeeping)."""
    plan = await service.migrations.plan()
    (group,) = plan.groups
    timeout = service.settings.lifecycle.lock_timeout
    jobs = [tenant_script(t, group, timeout) for t in group.tenants]
    return await execute_pass(dsn, jobs, connections, False)


async def execute_pass(
    dsn: str, jobs: list[str], connections: int, explicit_transaction: bool
) -> float:
    """Execute ``jobs`` over ``connections`` (opened before the clock starts): each in an
    explicit transaction (BEGIN, the text, COMMIT: three round trips) or as one message
    (PostgreSQL runs a multi-statement message as one implicit transaction: one round trip)."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    queue = list(reversed(jobs))

    async def worker(conn: asyncpg.Connection) -> None:
        while queue:
            job = queue.pop()
            if explicit_transaction:
                async with conn.transaction():
                    await conn.execute(job)
            else:
                await conn.execute(job)

    try:
        elapsed, _ = await timed(lambda: asyncio.gather(*(worker(c) for c in conns)))
    finally:
        for conn in conns:
            await conn.close()
    return len(jobs) / elapsed


async def console_pass(
    service: ConsoleService, fleet: list[FleetTenant], concurrency: int
) -> tuple[float, dict[str, float]]:
    """(a): plan + run like ``migrate all``; tenants/s end to end, and the phases."""
    started = time.perf_counter()
    plan = await service.migrations.plan()
    planned = time.perf_counter()
    state = await service.migrations.run(plan, concurrency, _discard_progress, _discard_event)
    finished = time.perf_counter()
    if plan.pending != len(fleet) or state.done != len(fleet):
        raise RuntimeError(
            f"console pass migrated {state.done} of {len(fleet)} "
            f"(pending {plan.pending}, failures {dict(list(state.failures.items())[:3])})"
        )
    return len(fleet) / (finished - started), {
        "plan_s": planned - started,
        "run_s": finished - planned,
        "tenant_phase_per_s": state.rate,
    }


async def alembic_pass(service: ConsoleService, sample: list[FleetTenant]) -> float:
    """(b): one alembic upgrade after another (alembic cannot run two in one process)."""
    head = head_revision("tenant")

    def upgrade_all() -> None:
        for t in sample:
            service.alembic.upgrade_tenant(t.schema, str(t.id), head)

    elapsed, _ = await timed(lambda: asyncio.to_thread(upgrade_all))
    return len(sample) / elapsed


LABELS = {
    "raw_tx": "(c) raw SQL, BEGIN/SQL/COMMIT",
    "raw_msg": "(c) raw SQL, one message",
    "script": "console's per-tenant scripts, raw",
    "console": "(a) console migrate all",
}


async def bench_size(
    cluster: LocalCluster,
    work: Path,
    count: int,
    concurrencies: list[int],
    rounds: int,
    alembic_sample: int,
    breakdown: bool,
    log: Callable[[str], None],
) -> SizeResult:
    result = SizeResult(count)
    dbname = f"bench_{count}"
    admin = await asyncpg.connect(cluster.dsn())
    await admin.execute(f"CREATE DATABASE {dbname}")
    await admin.close()
    dsn = cluster.dsn(dbname)
    settings = dataclasses.replace(
        Settings(),
        clusters={"primary": ClusterSettings(pool_max_size=2 * max(concurrencies) + 4)},
        backup=BackupSettings(dir=str(work / "backups")),
    )
    try:
        async with ConsoleService(settings, dsn=dsn) as service:
            started = time.perf_counter()
            await service.init()
            await service.provision("seed")
            fleet = await build_fleet(service, cluster.binaries, dsn, count)
            result.setup_s = time.perf_counter() - started
            log(f"  setup: {count} tenants at {FROM_REV} in {result.setup_s:.1f}s")

            result.status_behind_s, status = await timed(service.migrations.status)
            assert status.behind == count, status
            log(f"  migrate status (all behind): {result.status_behind_s:.2f}s")

            # One untimed pass first: every timed pass then starts from a fleet put back at
            # 0003 (catalogs with the same history), never from the freshly built one.
            await raw_pass(dsn, fleet, max(concurrencies), False)
            kinds = ["raw_tx", "raw_msg", *(["script"] if breakdown else []), "console"]
            for round_no in range(rounds):
                for concurrency in concurrencies:
                    # Rotate the order each round, so drift in the machine's load spreads evenly.
                    shift = round_no % len(kinds)
                    for kind in kinds[shift:] + kinds[:shift]:
                        await reset(dsn, fleet)
                        await settle(dsn)
                        if kind == "console":
                            rate, phases = await console_pass(service, fleet, concurrency)
                            result.console.setdefault(concurrency, []).append(rate)
                            result.console_tenant_phase.setdefault(concurrency, []).append(
                                phases["tenant_phase_per_s"]
                            )
                            detail = (
                                f" (plan {phases['plan_s']:.2f}s, run {phases['run_s']:.2f}s, "
                                f"tenant phase {phases['tenant_phase_per_s']:.1f}/s)"
                            )
                        else:
                            if kind == "script":
                                rate = await script_pass(service, dsn, concurrency)
                            else:
                                rate = await raw_pass(dsn, fleet, concurrency, kind == "raw_tx")
                            getattr(result, kind).setdefault(concurrency, []).append(rate)
                            detail = ""
                        log(
                            f"  round {round_no + 1}, concurrency {concurrency}: "
                            f"{LABELS[kind]} {rate:.1f}/s{detail}"
                        )

            result.status_head_s, status = await timed(service.migrations.status)
            assert status.behind == 0, status
            log(f"  migrate status (all at head): {result.status_head_s:.2f}s")
            started = time.perf_counter()
            plan = await service.migrations.plan()
            result.noop_plan_s = time.perf_counter() - started
            state = await service.migrations.run(plan, 2, _discard_progress, _discard_event)
            result.noop_s = time.perf_counter() - started
            assert plan.pending == 0 and state.total == 0
            log(f"  no-op migrate all: {result.noop_s:.2f}s (plan {result.noop_plan_s:.2f}s)")

            # As an operator meets them: a new process, new connections (cold backend caches).
            async with ConsoleService(settings, dsn=dsn) as fresh:
                result.status_cold_s, _ = await timed(fresh.migrations.status)
            async with ConsoleService(settings, dsn=dsn) as fresh:
                started = time.perf_counter()
                plan = await fresh.migrations.plan()
                await fresh.migrations.run(plan, 2, _discard_progress, _discard_event)
                result.noop_cold_s = time.perf_counter() - started
            result.cli_status_s = cli_seconds(dsn, work, "migrate", "status")
            result.cli_noop_s = cli_seconds(dsn, work, "migrate", "all")
            log(
                f"  fresh service: status {result.status_cold_s:.2f}s, no-op migrate all "
                f"{result.noop_cold_s:.2f}s; CLI (process start included): status "
                f"{result.cli_status_s:.2f}s, no-op migrate all {result.cli_noop_s:.2f}s"
            )

            sample = fleet[:alembic_sample]
            await reset(dsn, sample)
            result.alembic = await alembic_pass(service, sample)
            result.alembic_sample = len(sample)
            log(f"  (b) alembic, one at a time, {len(sample)} tenants: {result.alembic:.1f}/s")
    finally:
        admin = await asyncpg.connect(cluster.dsn())
        await admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        await admin.close()
    return result


def cli_seconds(dsn: str, work: Path, *args: str) -> float:
    """Wall-clock seconds of ``python -m console --dsn DSN ARGS`` (must succeed)."""
    config = work / "bench-cli.toml"
    config.write_text(f'[backup]\ndir = "{work / "backups"}"\n')
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), "--dsn", dsn, *args],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(results: list[SizeResult], major: int, total_s: float) -> None:
    print(f"\nPostgreSQL {major}, one new revision (0003 -> 0004: CREATE INDEX), fsync on")
    print("figures: median of the rounds (every round in brackets)")
    for r in results:
        print(f"\n{r.tenants} tenants (setup {r.setup_s:.0f}s)")
        for n in r.console:
            a, phase = median(r.console[n]), median(r.console_tenant_phase[n])
            c_tx, c_msg = median(r.raw_tx[n]), median(r.raw_msg[n])
            print(f"  concurrency {n}:")
            print(
                f"    (a) console migrate all    {a:8.1f} tenants/s end to end "
                f"{listing(r.console[n])}"
            )
            print(
                f"        its tenant phase       {phase:8.1f} tenants/s "
                f"{listing(r.console_tenant_phase[n])}"
            )
            if n in r.script:
                print(
                    f"        its scripts, raw       {median(r.script[n]):8.1f} tenants/s "
                    f"{listing(r.script[n])}"
                )
            print(f"    (c) raw, BEGIN/SQL/COMMIT  {c_tx:8.1f} tenants/s {listing(r.raw_tx[n])}")
            print(f"    (c) raw, one message       {c_msg:8.1f} tenants/s {listing(r.raw_msg[n])}")
            # Paired by round (console against the faster raw variant of the same round), so a
            # busy spell on a shared machine does not pit a slow round against a quiet one.
            paired = [
                con / max(tx, msg)
                for con, tx, msg in zip(r.console[n], r.raw_tx[n], r.raw_msg[n], strict=True)
            ]
            paired_phase = [
                con / max(tx, msg)
                for con, tx, msg in zip(
                    r.console_tenant_phase[n], r.raw_tx[n], r.raw_msg[n], strict=True
                )
            ]
            ratio = median(paired)
            print(
                f"    (a)/(c) = {ratio:5.2f} end to end, {median(paired_phase):5.2f} tenant phase "
                f"(median of per-round ratios against the faster raw "
                f"[{', '.join(f'{v:.2f}' for v in paired)}]); target >= {TARGET_VS_RAW}: "
                f"{verdict(ratio >= TARGET_VS_RAW)}"
            )
            print(
                f"    (a)/(b) = {a / r.alembic:5.2f}; target >= {TARGET_VS_ALEMBIC}: "
                f"{verdict(a / r.alembic >= TARGET_VS_ALEMBIC)}"
            )
        print(
            f"  (b) alembic, sequential     {r.alembic:8.1f} tenants/s ({r.alembic_sample} sampled)"
        )
        worst_status = max(r.status_behind_s, r.status_head_s, r.status_cold_s)
        print(
            f"  migrate status             {r.status_cold_s:8.2f} s fresh service, "
            f"{r.status_behind_s:.2f} s / {r.status_head_s:.2f} s warm (all behind / all at head), "
            f"{r.cli_status_s:.2f} s CLI; target < {TARGET_STATUS_S:g} s: "
            f"{verdict(worst_status < TARGET_STATUS_S)}"
        )
        worst_noop = max(r.noop_s, r.noop_cold_s)
        print(
            f"  no-op migrate all          {r.noop_cold_s:8.2f} s fresh service, {r.noop_s:.2f} s "
            f"warm, {r.cli_noop_s:.2f} s CLI; target < {TARGET_NOOP_S:g} s: "
            f"{verdict(worst_noop < TARGET_NOOP_S)}"
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\ntotal bench time {total_s / 60:.1f} min; load average at the end {load}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def listing(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


async def run(
    cluster: LocalCluster,
    work: Path,
    sizes: list[int],
    concurrencies: list[int],
    rounds: int,
    alembic_sample: int,
    breakdown: bool,
) -> list[SizeResult]:
    results = []
    for count in sizes:
        print(f"{count} tenants:", flush=True)
        results.append(
            await bench_size(
                cluster,
                work,
                count,
                concurrencies,
                rounds,
                alembic_sample,
                breakdown,
                lambda line: print(line, flush=True),
            )
        )
    return results


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=_int_list, default=[2000, 10000])
    parser.add_argument("--concurrency", type=_int_list, default=[2, 4])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per figure")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the console's per-tenant scripts over raw connections",
    )
    parser.add_argument("--alembic-sample", type=int, default=200)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    if max(args.concurrency) > 32:
        parser.error("--concurrency values must be 1-32")
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    started = time.perf_counter()
    # A throwaway cluster: no shutdown checkpoint (with 10,000 tenants' files it can take longer
    # than pg_ctl waits).
    with throwaway_cluster(
        binaries, {"max_connections": "100"}, "goconsole-bench-", stop_mode="immediate"
    ) as (cluster, work):
        results = asyncio.run(
            run(
                cluster,
                work,
                args.tenants,
                args.concurrency,
                args.rounds,
                args.alembic_sample,
                args.breakdown,
            )
        )
    report(results, binaries.major_version(), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
