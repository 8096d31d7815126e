"""Backups as the front ends see them (read side; h/b13write brings run, show, require_ready)."""

from __future__ import annotations

from datetime import UTC, datetime

from console.config import Settings
from console.core.backups import catalog
from console.core.backups.catalog import BackupRecord
from console.core.backups.summary import StalePolicy, TenantBackups, read_summaries
from console.core.db import Database
from console.core.tenants.registry import Registry


class BackupService:
    """The backup catalog of one cluster."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def history(self, key: str | None = None, limit: int | None = None) -> list[BackupRecord]:
        """Backups newest first, of one tenant or all."""
        async with self._db.acquire() as conn:
            tenant = await Registry().require(conn, key) if key else None
            return await catalog.history(conn, tenant.id if tenant else None, limit)

    async def latest(self, key: str) -> BackupRecord | None:
        """The tenant's newest backup."""
        found = await self.history(key, 1)
        return found[0] if found else None

    async def summaries(self, now: datetime | None = None) -> list[TenantBackups]:
        """Every tenant's backups at a glance (:mod:`console.core.backups.summary`), STALE
        judged at ``now`` (default: the current time)."""
        when = now or datetime.now(UTC)
        policy = StalePolicy.of(
            self._settings.schedule.full_backup, self._settings.backup.stale_grace_hours, when
        )
        async with self._db.acquire() as conn:
            return await read_summaries(conn, policy, when)
