"""Migration run history: recent runs with per-status counts, and what a run left to retry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.core.db import Database
from console.core.errors import InvalidInput, NotFound
from console.core.hints import ListMigrationRuns


@dataclass(frozen=True)
class RunSummary:
    """One migration run with its tenants counted per outcome."""

    id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    target: str
    status: str
    tenants: int
    succeeded: int
    failed: int
    skipped_busy: int
    pending: int

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (what ``migrate runs --json`` lists)."""
        return {
            "id": str(self.id),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "target": self.target,
            "status": self.status,
            "tenants": self.tenants,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped_busy": self.skipped_busy,
            "pending": self.pending,
        }


async def runs(db: Database, limit: int = 20) -> list[RunSummary]:
    """Recent runs, newest first, with per-status counts."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT r.id, r.started_at, r.finished_at, r.target, r.status,
                   count(t.*) AS tenants,
                   count(t.*) FILTER (WHERE t.status = 'succeeded') AS succeeded,
                   count(t.*) FILTER (WHERE t.status = 'failed') AS failed,
                   count(t.*) FILTER (WHERE t.status = 'skipped_busy') AS skipped_busy,
                   count(t.*) FILTER (WHERE t.status = 'pending') AS pending
            FROM public.migration_runs r
            LEFT JOIN public.migration_run_tenants t ON t.run_id = r.id
            GROUP BY r.id ORDER BY r.started_at DESC LIMIT $1
            """,
            limit,
        )
    return [RunSummary(**dict(r)) for r in rows]


async def run_failures(db: Database, run: str | None) -> tuple[str, list[str], dict[str, str]]:
    """(run id, keys to retry, key -> error) of ``run`` (default: the latest run)."""
    async with db.acquire() as conn:
        if run is None:
            found = await conn.fetchrow(
                "SELECT id, target FROM public.migration_runs ORDER BY started_at DESC LIMIT 1"
            )
        else:
            try:
                run_id = uuid.UUID(run)
            except ValueError:
                raise InvalidInput(f"run must be a run id (uuid), got {run!r}") from None
            found = await conn.fetchrow(
                "SELECT id, target FROM public.migration_runs WHERE id = $1", run_id
            )
        if found is None:
            raise NotFound("no such migration run", hint=ListMigrationRuns())
        rows = await conn.fetch(
            "SELECT t.key, r.error FROM public.migration_run_tenants r "
            "JOIN public.tenants t ON t.id = r.tenant_id "
            "WHERE r.run_id = $1 AND r.status IN ('failed', 'skipped_busy', 'pending') "
            "ORDER BY t.key",
            found["id"],
        )
    return found["target"], [r["key"] for r in rows], {r["key"]: r["error"] or "" for r in rows}
