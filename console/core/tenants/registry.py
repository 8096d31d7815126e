"""The tenant registry (``public.tenants``) and the audit log (``public.tenant_audit_log``)."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from console.core.actor import Actor
from console.core.errors import InvalidInput, InvalidState, NotFound


class TenantStatus(enum.StrEnum):
    """Values of the ``tenant_status`` enum."""

    INITIALIZING = "INITIALIZING"
    ACTIVE = "ACTIVE"
    DEACTIVATING = "DEACTIVATING"
    INACTIVE = "INACTIVE"
    OFFBOARDING = "OFFBOARDING"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"


_STATUS = {s.value: s for s in TenantStatus}
# A provision finds these left by an earlier run (crashed or failed) and finishes the tenant.
RESUMABLE = frozenset({TenantStatus.INITIALIZING, TenantStatus.FAILED})


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


@dataclass(frozen=True)
class AuditEntry:
    """One audit log row, joined with the tenant key."""

    id: uuid.UUID
    tenant_key: str | None
    action_type: str
    action_timestamp: datetime
    actor: str
    actor_host: str
    actor_address: str
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.id),
            "tenant": self.tenant_key,
            "action_type": self.action_type,
            "action_timestamp": self.action_timestamp.isoformat(),
            "actor": self.actor,
            "actor_host": self.actor_host,
            "actor_address": self.actor_address,
            "details": self.details,
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


class Registry:
    """Reads and writes ``public.tenants``."""

    async def get(self, conn: asyncpg.Connection, key: str) -> Tenant | None:
        """The tenant with ``key``, or None."""
        row = await conn.fetchrow("SELECT * FROM public.tenants WHERE key = $1", key)
        return Tenant.from_row(row) if row else None

    async def require(self, conn: asyncpg.Connection, key: str) -> Tenant:
        """The tenant with ``key``; NotFound otherwise."""
        tenant = await self.get(conn, key)
        if tenant is None:
            raise NotFound(f"no tenant with key {key!r} (see: goconsole tenants list)")
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


class AuditLog:
    """Appends to and reads ``public.tenant_audit_log``."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    async def write(
        self,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID | None,
        action_type: str,
        details: dict[str, Any],
    ) -> None:
        """One audit row by the current actor."""
        await conn.execute(
            "INSERT INTO public.tenant_audit_log "
            "(tenant_id, action_type, actor, actor_host, actor_address, details) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            tenant_id,
            action_type[:50],
            self.actor.user,
            self.actor.host,
            self.actor.address,
            details,
        )

    async def write_many(
        self,
        conn: asyncpg.Connection,
        action_type: str,
        entries: list[tuple[uuid.UUID, dict[str, Any]]],
    ) -> None:
        """One audit row per ``(tenant id, details)`` entry, all by the current actor, in one
        statement."""
        await conn.execute(
            "INSERT INTO public.tenant_audit_log "
            "(tenant_id, action_type, actor, actor_host, actor_address, details) "
            "SELECT tenant_id, $1, $2, $3, $4, details::jsonb "
            "FROM unnest($5::uuid[], $6::text[]) AS x(tenant_id, details)",
            action_type[:50],
            self.actor.user,
            self.actor.host,
            self.actor.address,
            [tenant_id for tenant_id, _ in entries],
            [json.dumps(details) for _, details in entries],
        )

    async def recent(
        self, conn: asyncpg.Connection, key: str | None = None, limit: int = 50
    ) -> list[AuditEntry]:
        """Newest first; only ``key``'s entries when given."""
        return await self.search(conn, key, None, None, limit)

    async def search(
        self,
        conn: asyncpg.Connection,
        key: str | None,
        action: str | None,
        actor: str | None,
        limit: int,
        *,
        key_prefix: bool = False,
    ) -> list[AuditEntry]:
        """Newest first, filtered by tenant key (or key prefix), action-type prefix and actor
        (each optional)."""
        rows = await conn.fetch(
            "SELECT a.*, t.key AS tenant_key FROM public.tenant_audit_log a "
            "LEFT JOIN public.tenants t ON t.id = a.tenant_id "
            "WHERE ($1::text IS NULL OR t.key = $1 OR ($5 AND starts_with(t.key, $1))) "
            "AND ($3::text IS NULL OR starts_with(a.action_type, $3)) "
            "AND ($4::text IS NULL OR a.actor = $4) "
            "ORDER BY a.action_timestamp DESC, a.id LIMIT $2",
            key,
            limit,
            action,
            actor,
            key_prefix,
        )
        return [
            AuditEntry(
                id=r["id"],
                tenant_key=r["tenant_key"],
                action_type=r["action_type"],
                action_timestamp=r["action_timestamp"],
                actor=r["actor"],
                actor_host=r["actor_host"],
                actor_address=r["actor_address"],
                details=r["details"],
            )
            for r in rows
        ]
