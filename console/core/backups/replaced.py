"""Replaced schemas: what a restore switched out, kept for ``backup.keep_replaced_days`` (or
``--keep-replaced``) so that ``backups restore KEY --rollback`` can switch it back; ``backups
purge-replaced`` drops the expired ones. A replaced schema is known by its name
(:func:`~console.core.backups.recovery.schema_prefix`) and its JSON comment (tenant id, key,
when replaced, until when kept, the backups restored)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from console.core.backups.recovery import REPLACED, is_side_schema
from console.core.backups.switch import REPLACED_NOTE
from console.core.db import Database
from console.core.errors import ConsoleError
from console.core.events import EventSink
from console.core.operations import OperationRunner
from console.core.tenants.schema import drop_schema


@dataclass(frozen=True)
class ReplacedSchema:
    """One replaced schema."""

    tenant: str
    tenant_id: str
    schema: str
    replaced_at: datetime
    keep_until: datetime
    bytes: int
    note: dict[str, Any]

    def expired(self, now: datetime) -> bool:
        """Whether it may be purged at ``now``."""
        return self.keep_until <= now

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "schema": self.schema,
            "replaced_at": self.replaced_at.isoformat(),
            "keep_until": self.keep_until.isoformat(),
            "bytes": self.bytes,
            "restored_from": self.note.get("restored_from"),
        }


async def list_replaced(conn: asyncpg.Connection, key: str | None = None) -> list[ReplacedSchema]:
    """Replaced schemas (one tenant's: ``key``), oldest first."""
    rows = await conn.fetch(
        "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') AS note, "
        "(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        " WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm')) AS bytes "
        "FROM pg_namespace n WHERE n.nspname LIKE 'tenant\\_%\\_\\_replaced\\_%' "
        "ORDER BY n.nspname"
    )
    found = []
    for row in rows:
        try:
            note = json.loads(row["note"] or "")
        except ValueError:
            continue
        if not isinstance(note, dict) or note.get("goconsole") != REPLACED_NOTE:
            continue
        tenant = str(note.get("key", ""))
        if (key is not None and tenant != key) or not is_side_schema(
            tenant, REPLACED, row["nspname"]
        ):
            continue
        found.append(
            ReplacedSchema(
                tenant,
                str(note["tenant_id"]),
                row["nspname"],
                datetime.fromisoformat(note["replaced_at"]),
                datetime.fromisoformat(note["keep_until"]),
                int(row["bytes"]),
                note,
            )
        )
    return sorted(found, key=lambda r: (r.replaced_at, r.schema))


@dataclass
class PurgeReport:
    """What ``purge-replaced`` dropped (or would drop) and what it kept."""

    dry_run: bool
    dropped: list[ReplacedSchema] = field(default_factory=list)
    kept: list[ReplacedSchema] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "dry_run": self.dry_run,
            "dropped": [r.as_json() for r in self.dropped],
            "kept": [r.as_json() for r in self.kept],
            "errors": self.errors,
        }


async def purge(
    db: Database, runner: OperationRunner, now: datetime, dry_run: bool, sink: EventSink
) -> PurgeReport:
    """Drop every replaced schema expired at ``now`` (``dry_run``: list them), each as
    operation ``purge_replaced`` of its tenant (lock, audit); a busy tenant's is left."""
    report = PurgeReport(dry_run)
    async with db.acquire() as conn:
        found = await list_replaced(conn)
    for schema in found:
        if not schema.expired(now):
            report.kept.append(schema)
            continue
        if dry_run:
            report.dropped.append(schema)
            continue
        try:
            async with runner.run("purge_replaced", schema.tenant, sink) as op:
                op.tenant_id = uuid.UUID(schema.tenant_id)
                async with op.step("drop", f"dropping {schema.schema}") as step:
                    async with db.acquire() as conn:
                        await drop_schema(conn, schema.schema)
                    step.details.update(
                        schema=schema.schema, keep_until=schema.keep_until.isoformat()
                    )
        except ConsoleError as exc:
            report.errors[schema.schema] = exc.message
            continue
        report.dropped.append(schema)
    return report
