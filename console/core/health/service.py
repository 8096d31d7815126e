"""``service.health``: one run of every check (:meth:`HealthService.check`), never raising for
what it finds: a cluster that cannot be reached is a CRIT ``connectivity`` check with the
reason, and the checks that need it are UNKNOWN until it answers again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from console.config import HealthSettings
from console.core.db import SESSION_ERRORS, Database, connection_failed
from console.core.errors import ConsoleError
from console.core.health import samples
from console.core.health.model import Check, HealthReport, State
from console.core.health.outside import backup_check, pool_check, scheduler_check
from console.core.health.replication import primary_checks, standby_checks
from console.core.health.server import select1_check, server_checks

if TYPE_CHECKING:
    from console.core.backups.summary import TenantBackups
    from console.core.pools.reads import PoolReads

Clock = Callable[[], datetime]
# The checks the Health screen graphs: replication lag (bytes), connections, SELECT 1 (ms).
GRAPHED = ("replication", "connections", "connectivity")
_DB_ERRORS: tuple[type[BaseException], ...] = (*SESSION_ERRORS, TimeoutError, ConsoleError)


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


class HealthService:
    """Runs the health checks of one cluster and records their samples."""

    def __init__(
        self,
        db: Database,
        settings: HealthSettings,
        pools: PoolReads,
        summaries: Callable[[datetime], Awaitable[list[TenantBackups]]],
        read_only: bool,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self.settings = settings
        self._pools = pools
        self._summaries = summaries
        self._read_only = read_only
        self.clock = clock
        self._since: dict[str, tuple[State, datetime]] | None = None
        self.last: HealthReport | None = None  # the newest report of this process

    async def check(self, record: bool = False) -> HealthReport:
        """Every check now; with ``record`` (the scheduled job) their samples are written to
        ``health_samples`` and old ones pruned (not on a standby or in read-only mode)."""
        started = time.perf_counter()
        now = self.clock()
        (reachable, standby, db_checks), pool, backups = await asyncio.gather(
            self._database_checks(),
            pool_check(self._pools, self.settings),
            self._backup_check(now),
        )
        checks = [*db_checks, pool, backups]
        notes = []
        if reachable:
            await self._load_since()
        checks = self._track(checks, now)
        recorded = False
        if record:
            if not reachable:
                notes.append("samples not recorded: the cluster did not answer")
            elif standby or self._read_only:
                notes.append("samples not recorded: read-only (a standby, or read-only mode)")
            else:
                async with self._db.acquire() as conn:
                    keep = timedelta(hours=self.settings.sample_retention_hours)
                    await samples.record(conn, now, checks, keep)
                recorded = True
        self.last = HealthReport(
            now, tuple(checks), (time.perf_counter() - started) * 1000, recorded, tuple(notes)
        )
        return self.last

    async def series(self, minutes: float = 60) -> samples.Series | None:
        """The graphed checks' recorded values over the last ``minutes``; None when the
        cluster does not answer."""
        try:
            async with self._db.acquire() as conn:
                since = self.clock() - timedelta(minutes=minutes)
                return await samples.series(conn, GRAPHED, since)
        except _DB_ERRORS:
            return None

    async def _database_checks(self) -> tuple[bool, bool, list[Check]]:
        try:
            async with self._db.acquire() as conn:
                checks = [await select1_check(conn, self._db.spec.connect_timeout, self.settings)]
                standby, found = await server_checks(conn, self.settings)
                replication = standby_checks if standby else primary_checks
                replicas = await replication(conn, self.settings)
                # a standby sees neither the primary's locks nor a leader: jobs run on the primary
                jobs = [] if standby else [await scheduler_check(conn)]
                return True, standby, [*checks, *found, *replicas, *jobs]
        except _DB_ERRORS as exc:
            reason = exc.message if isinstance(exc, ConsoleError) else None
            reason = reason or connection_failed(self._db.spec, exc).message
            return False, False, [Check("connectivity", "server", State.CRIT, "down", "", reason)]

    async def _backup_check(self, now: datetime) -> Check:
        try:
            return backup_check(await self._summaries(now), self.settings, now)
        except _DB_ERRORS as exc:
            reason = exc.message if isinstance(exc, ConsoleError) else str(exc).strip()
            return Check("backups", "backups", State.UNKNOWN, "not read", detail=reason)

    async def _load_since(self) -> None:
        """On the first run that reaches the cluster: each check's state and since when, from
        the samples (so "since" survives restarts)."""
        if self._since is not None:
            return
        try:
            async with self._db.acquire() as conn:
                loaded = await samples.states_since(conn)
        except _DB_ERRORS:
            loaded = {}
        self._since = {name: (State(state), at) for name, (state, at) in loaded.items()}

    def _track(self, checks: list[Check], now: datetime) -> list[Check]:
        known = self._since if self._since is not None else {}
        tracked = []
        for check in checks:
            previous = known.get(check.name)
            if previous is None or previous[0] is not check.state:
                known[check.name] = previous = (check.state, now)
            tracked.append(check.with_since(previous[1]))
        self._since = known
        return tracked
