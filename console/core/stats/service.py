"""The statistics sub-service the facade hands out as ``service.stats``: hourly collection
(the scheduler's job) and the reads of the ``stats`` command and the tenants screens."""

from __future__ import annotations

from datetime import UTC, datetime

from console.config import StatsSettings
from console.core.db import Database
from console.core.operations import OperationRunner
from console.core.stats.collect import StatsRun, collect
from console.core.stats.history import TenantStats, check_top, read_stats
from console.core.tenants.registry import Registry


class StatsService:
    """Collect schema statistics into their history and read them back."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        registry: Registry,
        settings: StatsSettings,
    ) -> None:
        self._db = db
        self._runner = runner
        self._registry = registry
        self._settings = settings

    async def collect(self, now: datetime | None = None) -> StatsRun:
        """One collection for every tenant stamped ``now`` (default: the current time), then the
        history older than ``stats.retention_days`` removed; refused in read-only mode."""
        self._runner.refuse_if_read_only("schema statistics collection")
        async with self._db.acquire() as conn:
            return await collect(conn, now or datetime.now(UTC), self._settings.retention_days)

    async def top(
        self, n: int, by: str = "size", key: str | None = None, now: datetime | None = None
    ) -> list[TenantStats]:
        """The ``n`` largest (``by='size'``) or fastest-growing (``'growth'``, over
        GROWTH_DAYS) tenants by their newest figures, or only ``key`` (NotFound when it is
        not registered) with its per-table row estimates."""
        check_top(n, by)
        async with self._db.acquire() as conn:
            if key is not None:
                await self._registry.require(conn, key)
            return await read_stats(
                conn, now or datetime.now(UTC), by=by, limit=n, key=key, with_tables=key is not None
            )

    async def of(self, key: str, now: datetime | None = None) -> TenantStats | None:
        """One tenant's newest figures and week's growth (no per-table rows); None when the
        history has none (one query, no registry check)."""
        async with self._db.acquire() as conn:
            rows = await read_stats(conn, now or datetime.now(UTC), key=key)
        return rows[0] if rows else None

    async def growth(self, now: datetime | None = None) -> dict[str, TenantStats]:
        """Every tenant's newest figures and week's growth, by key (one query)."""
        async with self._db.acquire() as conn:
            rows = await read_stats(conn, now or datetime.now(UTC))
        return {r.key: r for r in rows}
