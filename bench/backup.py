"""Per-tenant backups: the console's pipeline against plain ``pg_dump``, memory, incrementals,
and the restore test.

    .venv/bin/python bench/backup.py [--tenants 100] [--small-scale 1] [--large-mb 500]
                                     [--concurrency 2] [--rounds 2] [--pg-bin DIR]

On a throwaway cluster (fsync on) with ``--tenants`` tenants of a few MB each and one tenant
of at least ``--large-mb`` MB (relation size), all filled with generated orders, customers and
products:

1. the disk floor: sequential writes of 256 MiB with an fsync, MB/s;
2. ``--rounds`` interleaved rounds of, on the same tenants: (p) plain ``pg_dump -Fc -n SCHEMA -f
   FILE`` (its default gzip compression), ``--concurrency`` at a time; (c) the console's full
   backup (``service.backups.run(kind=full)``: dump, zstd, age, sha256, fsync), same concurrency.
   Printed per group (the small tenants; the large tenant alone) as MB/s of dump data and the
   ratio (p time / c time: the console's throughput relative to plain pg_dump; target >= 0.8);
3. the console's peak RSS backing up the large tenant: ``goconsole backups run large --kind
   full`` as a child process, its ``ru_maxrss`` (target < 200 MB);
4. 1% of the large tenant's rows updated, then an incremental: its time and bytes against the
   large tenant's last full (target <= 10% of both);
5. the restore test of the large tenant's chain (``backups verify large --restore-test``)
   against a plain ``pg_restore`` of the plain dump into a new database: times and ratio.

Results: bench/RESULTS.md.
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
from pathlib import Path

import asyncpg
from pyrage import x25519

from console.config import BackupSettings, ClusterSettings, Settings
from console.core.backups.catalog import BackupKind
from console.core.binaries import PgBinaries
from console.core.identifiers import qualified, quote_ident
from console.core.service import ConsoleService
from console.devenv.postgres import LocalCluster, throwaway_cluster

LARGE = "large"
FLOOR_BYTES = 256 << 20
TARGET_VS_PG_DUMP = 0.8
TARGET_RSS_MB = 200
TARGET_INCREMENTAL = 0.10


@dataclasses.dataclass(frozen=True)
class Keys:
    """A generated age key pair on disk."""

    recipient: str
    identity_file: Path


def make_keys(work: Path) -> Keys:
    """An age X25519 identity in ``work`` (0600) and its recipient."""
    identity = x25519.Identity.generate()
    path = work / "backup.key"
    path.write_text(f"{identity}\n", encoding="utf-8")
    path.chmod(0o600)
    return Keys(str(identity.to_public()), path)


async def fill(conn: asyncpg.Connection, schema: str, scale: float, tag: str = "a") -> None:
    """Generated catalogue, customers, orders and items: about 3 MB of relations per 1.0
    (``tag`` keeps names, SKUs and e-mails unique when a schema is filled again)."""
    categories, products = qualified(schema, "categories"), qualified(schema, "products")
    customers = qualified(schema, "customers")
    orders, items = qualified(schema, "orders"), qualified(schema, "order_items")
    n_products, n_customers = int(200 * scale), int(1000 * scale)
    n_orders, n_items = int(3000 * scale), int(9000 * scale)
    await conn.execute(
        f"INSERT INTO {categories} (name) SELECT 'bench category ' || $1 || g "
        "FROM generate_series(1, 20) g",
        tag,
    )
    await conn.execute(
        f"""
        INSERT INTO {products} (sku, name, description, price, category_id)
        SELECT 'sku-' || $2 || g, 'product ' || g, repeat(md5(g::text), 4), (g % 500) + 0.99,
               c.a[1 + g % array_length(c.a, 1)]
        FROM generate_series(1, $1) g,
             (SELECT array_agg(id) AS a FROM {categories}) c
        """,
        n_products,
        tag,
    )
    await conn.execute(
        f"""
        INSERT INTO {customers} (email, full_name, phone)
        SELECT 'customer' || $2 || g || '@example.com', 'Customer ' || md5(g::text),
               '+1-555-' || lpad((g % 10000)::text, 4, '0')
        FROM generate_series(1, $1) g
        """,
        n_customers,
        tag,
    )
    await conn.execute(
        f"""
        INSERT INTO {orders} (customer_id, status, total, placed_at)
        SELECT c.a[1 + g % array_length(c.a, 1)],
               (ARRAY['PENDING', 'PAID', 'SHIPPED', 'DELIVERED'])[1 + g % 4],
               (g % 1000) + 0.5, now() - make_interval(mins => g % 100000)
        FROM generate_series(1, $1) g, (SELECT array_agg(id) AS a FROM {customers}) c
        """,
        n_orders,
    )
    await conn.execute(
        f"""
        INSERT INTO {items} (order_id, product_id, quantity, unit_price)
        SELECT o.a[1 + g % array_length(o.a, 1)], p.a[1 + g % array_length(p.a, 1)],
               1 + g % 5, (g % 300) + 0.25
        FROM generate_series(1, $1) g,
             (SELECT array_agg(id) AS a FROM {orders}) o,
             (SELECT array_agg(id) AS a FROM {products}) p
        """,
        n_items,
    )


async def schema_bytes(conn: asyncpg.Connection, schema: str) -> int:
    """Total relation size of a schema's tables (indexes and TOAST included)."""
    value: int = await conn.fetchval(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
        "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
        "AND c.relkind = 'r'",
        schema,
    )
    return value


async def build_fleet(
    service: ConsoleService, dsn: str, tenants: int, scale: float, large_mb: int
) -> dict[str, str]:
    """Provision the tenants, fill them; key -> schema."""
    keys = [f"t{i:03d}" for i in range(tenants)]
    await service.provision_many([*keys, LARGE])
    schemas = {t.key: t.schema_name for t in await service.tenants()}
    conn = await asyncpg.connect(dsn)
    try:
        for key in keys:
            await fill(conn, schemas[key], scale)
        started = time.perf_counter()
        await fill(conn, schemas[LARGE], large_mb / 2.8)
        passes = 1
        while (size := await schema_bytes(conn, schemas[LARGE])) < large_mb << 20:
            passes += 1
            await fill(conn, schemas[LARGE], (large_mb - (size >> 20)) / 2.8 + 1, f"p{passes}")
        print(
            f"large tenant: {size / 2**20:.0f} MB of relations, filled in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        small = await schema_bytes(conn, schemas[keys[0]])
        print(f"small tenants: {tenants} x {small / 2**20:.1f} MB of relations", flush=True)
        await conn.execute("CHECKPOINT")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return schemas


def disk_floor(folder: Path) -> float:
    """MB/s of sequential 1 MiB writes of ``FLOOR_BYTES`` followed by an fsync."""
    path = folder / "floor.bin"
    chunk = os.urandom(1 << 20)
    started = time.perf_counter()
    with path.open("wb") as fh:
        for _ in range(FLOOR_BYTES >> 20):
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return FLOOR_BYTES / 2**20 / elapsed


async def plain_dumps(
    binaries: PgBinaries, dsn: str, schemas: list[str], folder: Path, concurrency: int
) -> float:
    """Seconds for ``pg_dump -Fc -n`` of each schema to a file, ``concurrency`` at a time."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    gate = asyncio.Semaphore(concurrency)

    async def one(schema: str) -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                str(binaries.tool("pg_dump")),
                "-Fc",
                "-n",
                schema,
                "-f",
                str(folder / f"{schema}.dump"),
                "--dbname",
                dsn,
            )
            if await proc.wait() != 0:
                raise RuntimeError(f"pg_dump of {schema} failed")

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in schemas))
    return time.perf_counter() - started


async def console_fulls(
    service: ConsoleService, keys: list[str], concurrency: int
) -> tuple[float, int]:
    """Seconds and raw (dump) bytes of the console's full backups of ``keys``."""
    started = time.perf_counter()
    report = await service.backups.run(keys, BackupKind.FULL, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    if report.failures:
        raise RuntimeError(f"backups failed: {report.failures}")
    records = [await service.backups.latest(key) for key in keys]
    return elapsed, sum(r.raw_bytes or 0 for r in records if r is not None)


def peak_rss_mb(config: Path) -> float:
    """ru_maxrss (MB) of ``goconsole backups run large --kind full`` run as a child."""
    goconsole = Path(sys.executable).with_name("goconsole")
    proc = subprocess.Popen(
        [str(goconsole), "--config", str(config), "backups", "run", LARGE, "--kind", "full"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    errors = proc.stderr.read()  # the progress line, and any error
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"goconsole backups run exited {proc.returncode}: {errors.decode()}")
    return usage.ru_maxrss / 1024


def write_config(path: Path, dsn: str, settings: BackupSettings) -> None:
    """A goconsole.toml for the CLI child: the cluster and the backup settings."""
    path.write_text(
        "[clusters.primary]\n"
        f'dsn = "{dsn}"\n'
        "pool_max_size = 10\n"
        "[backup]\n"
        f'dir = "{settings.dir}"\n'
        f'recipients = ["{settings.recipients[0]}"]\n'
        f'identity_file = "{settings.identity_file}"\n',
        encoding="utf-8",
    )


async def change_one_percent(dsn: str, schema: str) -> int:
    """Update 1% of the rows of every data table; the number of rows changed."""
    conn = await asyncpg.connect(dsn)
    changed = 0
    try:
        for table, assignment in (
            ("customers", "phone = phone || '-x'"),
            ("orders", "total = total + 1"),
            ("order_items", "quantity = quantity + 1"),
            ("products", "price = price + 1"),
        ):
            status = await conn.execute(
                f"UPDATE {qualified(schema, table)} SET {assignment} WHERE random() < 0.01"
            )
            changed += int(status.split()[-1])
    finally:
        await conn.close()
    return changed


async def plain_restore(
    binaries: PgBinaries, cluster: LocalCluster, dump: Path, *, script: bool = False
) -> float:
    """Seconds for ``pg_restore`` of a plain dump into a new database (dropped afterwards);
    ``script``: as a script instead, ``pg_restore --no-acl --file - | psql --single-transaction``
    (the console's route for a full, without its decryption, renaming and digests)."""
    admin = await asyncpg.connect(cluster.dsn())
    await admin.execute("CREATE DATABASE bench_plain_restore")
    try:
        started = time.perf_counter()
        target = cluster.dsn("bench_plain_restore")
        if script:
            await script_restore(binaries, target, dump)
        else:
            proc = await asyncio.create_subprocess_exec(
                str(binaries.tool("pg_restore")), "--exit-on-error", "--dbname", target, str(dump)
            )
            if await proc.wait() != 0:
                raise RuntimeError("plain pg_restore failed")
        return time.perf_counter() - started
    finally:
        await admin.execute(f"DROP DATABASE {quote_ident('bench_plain_restore')}")
        await admin.close()


async def script_restore(binaries: PgBinaries, dsn: str, dump: Path) -> None:
    """``pg_restore --no-acl --file - DUMP | psql --single-transaction`` into ``dsn``."""
    read, write = os.pipe()
    try:
        script = await asyncio.create_subprocess_exec(
            str(binaries.tool("pg_restore")), "--no-acl", "--file", "-", str(dump), stdout=write
        )
        psql = await asyncio.create_subprocess_exec(
            str(binaries.tool("psql")),
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "--dbname",
            dsn,
            "--file",
            "-",
            stdin=read,
            stdout=asyncio.subprocess.DEVNULL,
        )
    finally:
        os.close(read)
        os.close(write)
    if await script.wait() != 0 or await psql.wait() != 0:
        raise RuntimeError("pg_restore | psql failed")


async def run(cluster: LocalCluster, args: argparse.Namespace, work: Path) -> None:
    """Everything above, printed as it goes, then the summary."""
    keys = make_keys(work)
    backup = BackupSettings(
        dir=str(work / "backups"),
        recipients=(keys.recipient,),
        identity_file=str(keys.identity_file),
        concurrency=args.concurrency,
    )
    settings = dataclasses.replace(
        Settings(),
        clusters={"primary": ClusterSettings(pool_max_size=2 * args.concurrency + 4)},
        backup=backup,
    )
    dsn = cluster.dsn()
    binaries = cluster.binaries
    async with ConsoleService(settings, dsn=dsn) as service:
        await service.init()
        schemas = await build_fleet(service, dsn, args.tenants, args.small_scale, args.large_mb)
        small = sorted(k for k in schemas if k != LARGE)
        floor = disk_floor(work)
        print(f"disk floor: {floor:.0f} MB/s (sequential writes + fsync)", flush=True)
        groups = {"small tenants": small, "large tenant": [LARGE]}
        ratios: dict[str, list[float]] = {g: [] for g in groups}
        rates: dict[str, list[float]] = {g: [] for g in groups}
        for r in range(args.rounds):
            for group, members in groups.items():
                plain = await plain_dumps(
                    binaries, dsn, [schemas[k] for k in members], work / "plain", args.concurrency
                )
                console, raw = await console_fulls(service, members, args.concurrency)
                ratios[group].append(plain / console)
                rates[group].append(raw / 2**20 / console)
                print(
                    f"round {r + 1}, {group}: pg_dump -Fc {plain:.1f} s, console {console:.1f} s "
                    f"({raw / 2**20 / console:.0f} MB/s of dump data), ratio {plain / console:.2f}",
                    flush=True,
                )
        config = work / "goconsole.toml"
        write_config(config, dsn, backup)
        rss = peak_rss_mb(config)
        print(f"peak RSS of goconsole backing up the large tenant: {rss:.0f} MB", flush=True)
        full = await service.backups.latest(LARGE)
        assert full is not None and full.duration_ms is not None and full.bytes is not None
        changed = await change_one_percent(dsn, schemas[LARGE])
        started = time.perf_counter()
        report = await service.backups.run([LARGE], BackupKind.INCREMENTAL)
        incr_s = time.perf_counter() - started
        incr = await service.backups.latest(LARGE)
        assert incr is not None and not report.failures and incr.kind is BackupKind.INCREMENTAL
        incr_bytes = incr.bytes or 0
        print(
            f"incremental after {changed} rows changed: {incr_s:.2f} s, {incr_bytes} bytes; "
            f"full {full.duration_ms / 1000:.2f} s, {full.bytes} bytes",
            flush=True,
        )
        started = time.perf_counter()
        verified = await service.backups.verify([LARGE], restore_test=True)
        verify_s = time.perf_counter() - started
        if verified.failures:
            raise RuntimeError(f"restore test failed: {verified.failures}")
        plain_dump = work / "plain" / f"{schemas[LARGE]}.dump"
        restore_s = await plain_restore(binaries, cluster, plain_dump)
    print()
    print(
        f"PostgreSQL {binaries.major_version()}, {args.tenants} small tenants + 1 of "
        f"{args.large_mb}+ MB, {args.concurrency} at a time, fsync on, disk floor {floor:.0f} MB/s"
    )
    for group in groups:
        median = statistics.median(ratios[group])
        met = "met" if median >= TARGET_VS_PG_DUMP else "MISSED"
        print(
            f"  full pipeline vs pg_dump -Fc, {group}: ratio {median:.2f} "
            f"[{', '.join(f'{x:.2f}' for x in ratios[group])}] (target >= 0.8: {met}); "
            f"{statistics.median(rates[group]):.0f} MB/s of dump data = "
            f"{statistics.median(rates[group]) / floor:.2f} x disk floor"
        )
    met = "met" if rss < TARGET_RSS_MB else "MISSED"
    print(f"  peak RSS, large tenant: {rss:.0f} MB (target < 200 MB: {met})")
    time_ratio = incr_s / (full.duration_ms / 1000)
    byte_ratio = incr_bytes / full.bytes
    met = "met" if max(time_ratio, byte_ratio) <= TARGET_INCREMENTAL else "MISSED"
    print(
        f"  incremental (1% of rows changed) / full: time {time_ratio:.3f}, bytes "
        f"{byte_ratio:.3f} (target <= 0.10 both: {met})"
    )
    print(
        f"  restore test of the large tenant: {verify_s:.1f} s; plain pg_restore "
        f"{restore_s:.1f} s; ratio {verify_s / restore_s:.2f}"
    )


def main() -> int:
    """Parse arguments, start a throwaway cluster, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--small-scale", type=float, default=1.0, help="~3 MB of relations per 1.0")
    parser.add_argument("--large-mb", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pg-bin", help="PostgreSQL bin dir (default: embedded PostgreSQL 18)")
    args = parser.parse_args()
    binaries = PgBinaries(Path(args.pg_bin)) if args.pg_bin else PgBinaries.embedded()
    with throwaway_cluster(binaries, {"max_connections": "100"}, "goconsole-bench-") as (
        cluster,
        work,
    ):
        asyncio.run(run(cluster, args, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
