"""The audit log (``public.tenant_audit_log``): its entries, its writer and reader, and the one
column list every audit INSERT uses (single rows here; batched ones in bulk provisioning and
migration records)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from console.core.actor import Actor

AUDIT_COLUMNS = (
    "tenant_id",
    "action_type",
    "action_timestamp",
    "actor",
    "actor_host",
    "actor_address",
    "details",
)
AUDIT_INSERT = f"INSERT INTO public.tenant_audit_log ({', '.join(AUDIT_COLUMNS)})"
# The column's default: the time the row is written.
NOW = "clock_timestamp()"


def audit_row(
    tenant_id: str, action_type: str, actor: tuple[str, str, str], details: str, at: str = NOW
) -> str:
    """The SQL expressions of one audit row, in :data:`AUDIT_COLUMNS` order; ``actor`` gives
    the user, host and address expressions (bind parameters, or fields of a context)."""
    return ", ".join((tenant_id, action_type, at, *actor, details))


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


class AuditLog:
    """Appends to and reads ``public.tenant_audit_log``."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    @property
    def actor_values(self) -> tuple[str, str, str]:
        """The actor's user, host and address: bind values for the actor columns."""
        return self.actor.user, self.actor.host, self.actor.address

    async def write(
        self,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID | None,
        action_type: str,
        details: dict[str, Any],
    ) -> None:
        """One audit row by the current actor."""
        await conn.execute(
            f"{AUDIT_INSERT} VALUES ({audit_row('$1', '$2', ('$3', '$4', '$5'), '$6')})",
            tenant_id,
            action_type[:50],
            *self.actor_values,
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
        row = audit_row("tenant_id", "$1", ("$2", "$3", "$4"), "details::jsonb")
        await conn.execute(
            f"{AUDIT_INSERT} SELECT {row} "
            "FROM unnest($5::uuid[], $6::text[]) AS x(tenant_id, details)",
            action_type[:50],
            *self.actor_values,
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
