"""The tenant registry (``public.tenants``)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# Re-exported until console/ui imports it from console.core.audit.
from console.core.errors import InvalidInput, InvalidState, NotFound
from console.core.hints import ListTenants


class TenantStatus(enum.StrEnum):
    """Values of the ``tenant_status`` enum."""

    INITIALIZING = "INITIALIZING"
    ACTIVE = "ACTIVE"
    DEACTIVATING = "DEACTIVATING"
    INACTIVE = "INACTIVE"
    OFFBOARDING = "OFFBOARDING"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"
    RESTORING = "RESTORING"


_STATUS = {s.value: s for s in TenantStatus}


@dataclass(frozen=True)
class Tenant:
    """One registry row."""

    id: uuid.UUID
    key: str
    schema_name: str
    display_name: str
    status: TenantStatus
    cluster: str
    created_at: datetime
    updated_at: datetime
    config: dict[str, Any] | None  # None: not loaded (bulk listings skip it)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Tenant:
        """Build from a ``SELECT * FROM tenants`` row (``config`` may be left out)."""
        return cls(
            id=row["id"],
            key=row["key"],
            schema_name=row["schema_name"],
            display_name=row["display_name"],
            status=_STATUS[row["status"]],
            cluster=row["cluster"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            config=row.get("config"),
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.id),
            "key": self.key,
            "schema_name": self.schema_name,
            "display_name": self.display_name,
            "status": self.status.value,
            "cluster": self.cluster,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "config": self.config,
        }


def parse_status(value: str) -> TenantStatus:
    """A status name from the command line, case-insensitive."""
    try:
        return TenantStatus(value.upper())
    except ValueError:
        allowed = ", ".join(s.value for s in TenantStatus)
        raise InvalidInput(f"unknown status {value!r}; allowed: {allowed}") from None


def display_name_for(key: str, display_name: str | None) -> str:
    """The display name a new tenant gets: ``display_name`` stripped, or else the key."""
    name = (display_name or key).strip()
    if not name or len(name) > 200:
        raise InvalidInput("display name must be 1-200 characters")
    return name


async def registry_exists(conn: asyncpg.Connection) -> bool:
    """Whether the cluster has the registry (``init`` created the control schema)."""
    return bool(await conn.fetchval("SELECT to_regclass('public.tenants') IS NOT NULL"))


class Registry:
    """Reads and writes ``public.tenants``."""

    async def signature(self, conn: asyncpg.Connection) -> tuple[int, object]:
        """(row count, latest updated_at): changes whenever a tenant is added or changes."""
        row = await conn.fetchrow("SELECT count(*), max(updated_at) FROM public.tenants")
        assert row is not None
        return (row[0], row[1])

    async def get(self, conn: asyncpg.Connection, key: str) -> Tenant | None:
        """The tenant with ``key``, or None."""
        row = await conn.fetchrow("SELECT * FROM public.tenants WHERE key = $1", key)
        return Tenant.from_row(row) if row else None

    async def require(self, conn: asyncpg.Connection, key: str) -> Tenant:
        """The tenant with ``key``; NotFound otherwise."""
        tenant = await self.get(conn, key)
        if tenant is None:
            raise NotFound(f"no tenant with key {key!r}", hint=ListTenants())
        return tenant

    async def list(
        self,
        conn: asyncpg.Connection,
        status: TenantStatus | None = None,
        with_config: bool = True,
    ) -> list[Tenant]:
        """All tenants (optionally of one status), ordered by key; ``with_config=False`` skips
        decoding every row's config JSON (the bulk of the cost at 100,000 tenants)."""
        columns = (
            "*"
            if with_config
            else ("id, key, schema_name, display_name, status, cluster, created_at, updated_at")
        )
        rows = await conn.fetch(
            f"SELECT {columns} FROM public.tenants "
            "WHERE $1::tenant_status IS NULL OR status = $1 ORDER BY key",
            status.value if status else None,
        )
        return [Tenant.from_row(r) for r in rows]

    async def insert(
        self, conn: asyncpg.Connection, key: str, schema: str, display_name: str, cluster: str
    ) -> Tenant | None:
        """A new INITIALIZING row, or None when the key or schema name is taken."""
        row = await conn.fetchrow(
            "INSERT INTO public.tenants (key, schema_name, display_name, cluster) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING *",
            key,
            schema,
            display_name,
            cluster,
        )
        return Tenant.from_row(row) if row else None

    async def transition(
        self,
        conn: asyncpg.Connection,
        tenant: Tenant,
        to: TenantStatus,
        allowed_from: AbstractSet[TenantStatus],
    ) -> Tenant:
        """Move ``tenant`` to ``to`` if it is still in one of ``allowed_from``."""
        row = await conn.fetchrow(
            "UPDATE public.tenants SET status = $2 "
            "WHERE id = $1 AND status = ANY($3::tenant_status[]) RETURNING *",
            tenant.id,
            to.value,
            [s.value for s in allowed_from],
        )
        if row is None:
            current = await self.require(conn, tenant.key)
            raise InvalidState(f"tenant {tenant.key!r} is {current.status}; cannot move it to {to}")
        return Tenant.from_row(row)
