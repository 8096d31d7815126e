"""Snapshots of PgBouncer's pools: SHOW POOLS + STATS + DATABASES in one view per alias, with
rates from the previous snapshot and a backoff schedule while PgBouncer is unreachable."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.core.errors import PgBouncerUnavailable
from console.core.identifiers import TENANT_SCHEMA_PREFIX
from console.core.pools.admin import AdminConnection
from console.core.pools.admin_spec import ADMIN_DATABASE
from console.core.pools.log import server_failures
from console.core.pools.rates import PoolRates, RateTracker
from console.core.pools.rows import (
    DatabaseRow,
    Limits,
    PoolRow,
    StatsRow,
    parse_config,
    parse_databases,
    parse_pools,
    parse_stats,
)

CONFIG_REFRESH_S = 30.0
MAX_BACKOFF_S = 30.0
_EMPTY_POOL = PoolRow("", 0, 0, 0, 0, 0, 0, 0, "")


@dataclass(frozen=True)
class PoolView:
    """One PgBouncer database (alias) as the gauges show it."""

    name: str
    pool_size: int
    reserve_pool: int
    max_connections: int
    pool: PoolRow
    paused: bool
    disabled: bool
    rates: PoolRates | None
    maxwait_rising: bool
    reason: str | None = None  # why clients wait with no server connection (see no_server)

    @property
    def tenant(self) -> str | None:
        """The tenant key when this alias is a tenant's (``tenant_<key>``)."""
        if self.name.startswith(TENANT_SCHEMA_PREFIX):
            return self.name[len(TENANT_SCHEMA_PREFIX) :]
        return None

    @property
    def utilisation(self) -> float:
        """Active server connections over the effective pool size."""
        return self.pool.sv_active / self.pool_size if self.pool_size else 0.0

    @property
    def saturation(self) -> float:
        """Demand over capacity: (active + waiting clients' need) / pool size; sorts gauges."""
        if not self.pool_size:
            return float(self.pool.cl_waiting)
        return (self.pool.sv_active + self.pool.cl_waiting) / self.pool_size

    @property
    def alerts(self) -> tuple[str, ...]:
        """Words for what needs attention (shown with a symbol, never by colour alone)."""
        found = []
        if self.pool.cl_waiting > 0:
            found.append("WAITING")
        if self.maxwait_rising:
            found.append("MAXWAIT RISING")
        if self.paused:
            found.append("PAUSED")
        if self.disabled:
            found.append("DISABLED")
        if self.reason is not None:
            found.append("NO SERVER")
        return tuple(found)

    @property
    def no_server(self) -> bool:
        """Clients wait, the pool is not paused, and it has no server connection at all."""
        return self.pool.cl_waiting > 0 and self.pool.servers == 0 and not self.paused

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        r = self.rates
        return {
            "database": self.name,
            "tenant": self.tenant,
            "cl_active": self.pool.cl_active,
            "cl_waiting": self.pool.cl_waiting,
            "sv_active": self.pool.sv_active,
            "sv_idle": self.pool.sv_idle,
            "sv_used": self.pool.sv_used,
            "maxwait": self.pool.maxwait_us // 1_000_000,
            "maxwait_us": self.pool.maxwait_us % 1_000_000,
            "maxwait_total_us": self.pool.maxwait_us,
            "pool_size": self.pool_size,
            "reserve_pool": self.reserve_pool,
            "utilisation": round(self.utilisation, 4),
            "paused": self.paused,
            "disabled": self.disabled,
            "alerts": list(self.alerts),
            "reason": self.reason,
            "xact_per_s": None if r is None else round(r.xact_per_s, 2),
            "query_per_s": None if r is None else round(r.query_per_s, 2),
            "avg_query_ms": None if r is None else round(r.avg_query_ms, 3),
            "avg_wait_ms": None if r is None else round(r.avg_wait_ms, 3),
        }


@dataclass(frozen=True)
class PoolSnapshot:
    """Every pool at one moment, busiest first, with the totals against the global limits."""

    taken_at: datetime
    latency_ms: float
    version: str
    limits: Limits
    pools: tuple[PoolView, ...]
    clients: int
    waiting: int
    servers: int
    busiest_servers: int
    rates_reset: bool

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "latency_ms": round(self.latency_ms, 2),
            "version": self.version,
            "totals": {
                "clients": self.clients,
                "max_client_conn": self.limits.max_client_conn,
                "waiting": self.waiting,
                "servers": self.servers,
                "busiest_database_servers": self.busiest_servers,
                "max_db_connections": self.limits.max_db_connections,
            },
            "rates_reset": self.rates_reset,
            "pools": [p.as_json() for p in self.pools],
        }


class PoolMonitor:
    """Takes snapshots over one reused admin connection; owns rates and the retry backoff."""

    def __init__(
        self,
        admin: AdminConnection,
        clock: Callable[[], float] = time.monotonic,
        log_file: Path | None = None,
        target: tuple[str, int] | None = None,
    ) -> None:
        self.admin = admin
        self._clock = clock
        self.log_file = log_file
        self.target = target
        self._rates = RateTracker()
        self._maxwait: dict[str, int] = {}
        self._limits: tuple[float, Limits, str] | None = None
        self.failures = 0
        self.last_error: str | None = None

    async def snapshot(self) -> PoolSnapshot:
        """One snapshot; PgBouncerUnavailable (and a longer :meth:`next_delay`) when down."""
        started = time.perf_counter()
        try:
            limits, version = await self._config()
            pools = parse_pools(await self.admin.show("POOLS"))
            stats = parse_stats(await self.admin.show("STATS"))
            databases = parse_databases(await self.admin.show("DATABASES"))
        except PgBouncerUnavailable as exc:
            self.failures += 1
            self.last_error = exc.message
            self._rates.reset()
            self._limits = None
            raise
        reset = self.failures > 0
        self.failures = 0
        self.last_error = None
        restarts = self._rates.restarts
        # PgBouncer lists a database's stats only once it has been used: until then, zeros
        for name in databases.keys() - stats.keys():
            stats[name] = StatsRow(name, 0, 0, 0, 0, 0, None)
        rates = self._rates.update(self._clock(), stats)
        views = [
            self._view(db, pools.get(name, _EMPTY_POOL), rates.get(name), limits)
            for name, db in databases.items()
            if name != ADMIN_DATABASE
        ]
        self._maxwait = {v.name: v.pool.maxwait_us for v in views}
        views = self._explain(views, databases)
        views.sort(key=lambda v: (-v.saturation, -v.pool.maxwait_us, v.name))
        return PoolSnapshot(
            datetime.now(UTC),
            (time.perf_counter() - started) * 1000,
            version,
            limits,
            tuple(views),
            sum(p.cl_active + p.cl_waiting for p in pools.values()),
            sum(p.cl_waiting for p in pools.values()),
            sum(p.servers for p in pools.values()),
            max((d.current_connections for d in databases.values()), default=0),
            reset or self._rates.restarts > restarts,
        )

    def _view(
        self, db: DatabaseRow, pool: PoolRow, rates: PoolRates | None, limits: Limits
    ) -> PoolView:
        previous = self._maxwait.get(db.name, 0)
        return PoolView(
            db.name,
            db.pool_size or limits.default_pool_size,
            db.reserve_pool,
            db.max_connections,
            pool,
            db.paused,
            db.disabled,
            rates,
            pool.maxwait_us > previous,
        )

    def _explain(self, views: list[PoolView], databases: dict[str, DatabaseRow]) -> list[PoolView]:
        """Give each pool whose clients wait with no server connection the reason: the log's
        last server failure for it, an alias pointing away from the managed server, or that
        nothing says why."""
        stuck = {v.name for v in views if v.no_server}
        if not stuck:
            return views
        failures = server_failures(self.log_file) if self.log_file is not None else {}
        return [
            dataclasses.replace(v, reason=self._reason(databases[v.name], failures))
            if v.name in stuck
            else v
            for v in views
        ]

    def _reason(self, db: DatabaseRow, failures: dict[str, str]) -> str:
        found = [failures[db.name]] if db.name in failures else []
        if self.target is not None and (db.host, db.port) != self.target:
            host, port = self.target
            found.append(
                f"alias points at {db.host}:{db.port}, not the managed server {host}:{port} "
                "(run pool sync)"
            )
        if found:
            return "; ".join(found)
        if self.log_file is None:
            return "no server connection (set [pgbouncer] log_file to see why)"
        return "no server connection, and PgBouncer's log says no reason"

    async def _config(self) -> tuple[Limits, str]:
        now = self._clock()
        if self._limits is None or now - self._limits[0] > CONFIG_REFRESH_S:
            limits = parse_config(await self.admin.show("CONFIG"))
            version_rows = await self.admin.show("VERSION")
            version = str(next(iter(version_rows[0].values()))) if version_rows else "?"
            self._limits = (now, limits, version)
        return self._limits[1], self._limits[2]

    def invalidate_config(self) -> None:
        """Re-read SHOW CONFIG on the next snapshot (after SET or RELOAD)."""
        self._limits = None

    def next_delay(self, interval: float) -> float:
        """Seconds until the next poll: ``interval`` when healthy, doubling while down."""
        if self.failures == 0:
            return interval
        return float(min(MAX_BACKOFF_S, interval * 2.0 ** min(self.failures, 10)))
