"""PgBouncer as one cluster's pools see it: configuration, the reused admin connection, what
the pools look like now, and the alias and RELOAD helpers every pool action shares.
:class:`~console.core.pools.service.PoolService` adds the actions and lifecycle hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from console.config import PgBouncerSettings
from console.core.db import Database
from console.core.errors import NotConfigured, NotFound, OperationFailed, PgBouncerUnavailable
from console.core.hints import SyncPools
from console.core.identifiers import schema_for
from console.core.operations import OperationRunner
from console.core.pools.admin_spec import AdminSpec
from console.core.pools.aliases import ServerTarget, size_limit
from console.core.pools.include_file import Alias, IncludeFile
from console.core.pools.rows import ClientRow, parse_clients, parse_config, parse_databases
from console.core.tenants.registry import Registry

if TYPE_CHECKING:  # the driver loads with the first admin connection, not with the service
    from console.core.pools.admin import AdminConnection
    from console.core.pools.monitor import PoolMonitor, PoolSnapshot


class PoolReads:
    """PgBouncer reads for one cluster; ``configured`` is False without ``admin_dsn``."""

    def __init__(
        self,
        settings: PgBouncerSettings,
        db: Database,
        runner: OperationRunner,
        registry: Registry,
        admin_dsn: str | None = None,
    ) -> None:
        self.settings = settings
        self._db = db
        self._runner = runner
        self._registry = registry
        self.target = ServerTarget.resolve(settings, db.spec)
        self._monitor: PoolMonitor | None = None
        self.include = IncludeFile(Path(settings.include_file).expanduser())
        self.spec: AdminSpec | None = None
        self._missing = NotConfigured("PgBouncer is not configured")
        try:
            self.spec = AdminSpec.resolve(settings, admin_dsn)
        except NotConfigured as exc:
            self._missing = exc

    @property
    def configured(self) -> bool:
        """Whether a PgBouncer is managed at all."""
        return self.spec is not None and bool(self.settings.include_file)

    @property
    def monitored(self) -> bool:
        """Whether PgBouncer's pools can be read (an admin DSN; the include file is needed
        only for aliases: resize, sync and the lifecycle's alias steps)."""
        return self.spec is not None

    @property
    def monitor(self) -> PoolMonitor:
        """The snapshot taker (one admin connection, reused)."""
        if self._monitor is None:
            from console.core.pools.admin import AdminConnection
            from console.core.pools.monitor import PoolMonitor

            if self.spec is None:
                raise self._missing
            log = self.settings.log_file
            self._monitor = PoolMonitor(
                AdminConnection(self.spec),
                log_file=Path(log).expanduser() if log else None,
                target=(self.target.host, self.target.port),
            )
        return self._monitor

    @property
    def admin(self) -> AdminConnection:
        """The reused admin connection."""
        return self.monitor.admin

    def _require_include(self) -> None:
        if not self.settings.include_file:
            raise NotConfigured(
                "PgBouncer aliases need [pgbouncer] include_file: the file pgbouncer.ini %includes"
            )

    async def close(self) -> None:
        """Close the admin connection."""
        if self._monitor is not None:
            await self._monitor.admin.close()

    # -- reads ------------------------------------------------------------------------------

    async def snapshot(self) -> PoolSnapshot:
        """Every pool now (see :class:`PoolMonitor`)."""
        return await self.monitor.snapshot()

    async def clients(self, key: str | None = None) -> list[ClientRow]:
        """Client connections, of one tenant's alias when ``key`` is given (OperationFailed when
        PgBouncer has no alias for it)."""
        if key is None:
            return parse_clients(await self.admin.show("CLIENTS"))
        alias = schema_for(key)
        if await self.alias_state(alias) is None:
            raise OperationFailed(
                f"tenant {key} has no pool: PgBouncer has no alias {alias} "
                "(only ACTIVE and INACTIVE tenants have one)",
                hint=SyncPools(),
            )
        return [c for c in parse_clients(await self.admin.show("CLIENTS")) if c.database == alias]

    async def size_limit(self) -> int:
        """Largest pool size + reserve allowed now (see :func:`size_limit`)."""
        return size_limit(self.settings, parse_config(await self.admin.show("CONFIG")))

    # -- helpers the actions share ----------------------------------------------------------

    def _alias(self, name: str, pool: int | None = None, reserve: int | None = None) -> Alias:
        return Alias(
            name,
            self.target.host,
            self.target.port,
            self.target.dbname,
            self.settings.default_pool_size if pool is None else pool,
            self.settings.default_reserve_pool if reserve is None else reserve,
        )

    async def _resume(self, name: str) -> None:
        """RESUME, treating 'is not paused' as done."""
        try:
            await self.admin.database_command("RESUME", name)
        except OperationFailed as exc:
            if "is not paused" not in exc.message:
                raise

    async def _enable_quietly(self, name: str) -> None:
        with contextlib.suppress(PgBouncerUnavailable, NotFound, OperationFailed):
            await self.admin.database_command("ENABLE", name)

    async def _pause_timeout_message(self, name: str, wait: float) -> str:
        active = [
            c
            for c in parse_clients(await self.admin.show("CLIENTS"))
            if c.database == name and c.state == "active"
        ]
        listing = "; ".join(c.describe() for c in active[:10]) or "none listed"
        more = f" and {len(active) - 10} more" if len(active) > 10 else ""
        return (
            f"PAUSE {name} timed out after {wait:g}s; the pool was resumed. "
            f"{len(active)} client(s) still in a transaction: {listing}{more}"
        )

    async def _reload_if_reachable(self, note: Callable[[str], None]) -> str:
        """RELOAD now; when PgBouncer is down the file is already right and is read when it
        starts, so the step goes on with a ``note`` instead of failing."""
        try:
            await self.admin.command("RELOAD")
        except PgBouncerUnavailable as exc:
            note(f"{exc.message}; it reads the include file when it starts")
            return "pending: PgBouncer unreachable"
        self.monitor.invalidate_config()
        return "done"

    async def alias_state(self, name: str) -> tuple[bool, bool] | None:
        """(paused, disabled) of an alias in PgBouncer, or None when it has no such database."""
        row = parse_databases(await self.admin.show("DATABASES")).get(name)
        return None if row is None else (row.paused, row.disabled)

    def _synced_alias(self, current: Alias | None, keep_size: bool, name: str) -> Alias:
        """The alias sync wants: the target always; the current size only when set
        explicitly (``pool set-size``), else the configured defaults."""
        if keep_size and current is not None:
            return self._alias(name, current.pool_size, current.reserve_pool)
        return self._alias(name)
