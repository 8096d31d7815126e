"""``pool sync``: what the include file should list, compared alias by alias with what it
lists, and the report of what changed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from console.core.pools.include_file import Alias

SYNC_FIELDS = ("host", "port", "dbname", "pool_size", "reserve_pool")


@dataclass(frozen=True)
class AliasChange:
    """What ``pool sync`` did to one alias: added, removed, or fields changed (old, new)."""

    alias: str
    action: str  # added | removed | changed
    fields: tuple[tuple[str, object, object], ...] = ()

    def describe(self) -> str:
        """One line: ``tenant_acme: port 5432 → 5433, pool_size 20 → 10``."""
        if self.action != "changed":
            return f"{self.alias}: {self.action}"
        return f"{self.alias}: " + ", ".join(f"{n} {old} → {new}" for n, old, new in self.fields)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (also the audit detail)."""
        return {
            "alias": self.alias,
            "action": self.action,
            "fields": {n: {"old": old, "new": new} for n, old, new in self.fields},
        }


@dataclass(frozen=True)
class SyncReport:
    """The outcome of ``pool sync``."""

    changes: tuple[AliasChange, ...]
    reblocked: tuple[str, ...]
    reload: str

    def lines(self) -> list[str]:
        """What changed, one line per alias, then the re-blocked INACTIVE aliases."""
        lines = [c.describe() for c in self.changes] or [
            "every alias already matches the registry and config"
        ]
        if self.reblocked:
            lines.append(f"INACTIVE blocked again: {', '.join(self.reblocked)}")
        if self.reload != "done":
            lines.append(f"reload {self.reload}")
        return lines

    def summary(self) -> str:
        """``N alias(es) changed: a added, r removed, c changed``."""
        count = {a: sum(c.action == a for c in self.changes) for a in ("added", "removed")}
        changed = len(self.changes) - count["added"] - count["removed"]
        return (
            f"{len(self.changes)} alias(es) changed: {count['added']} added, "
            f"{count['removed']} removed, {changed} updated"
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "changes": [c.as_json() for c in self.changes],
            "reblocked": list(self.reblocked),
            "reload": self.reload,
        }


def reconcile(aliases: dict[str, Alias], wanted: dict[str, Alias]) -> list[AliasChange]:
    """Make ``aliases`` equal to ``wanted`` in place; returns each change, by alias name."""
    changes = []
    for name in sorted(aliases.keys() | wanted.keys()):
        old, new = aliases.get(name), wanted.get(name)
        if new is None:
            del aliases[name]
            changes.append(AliasChange(name, "removed"))
        elif old is None:
            aliases[name] = new
            changes.append(AliasChange(name, "added"))
        elif old != new:
            aliases[name] = new
            fields = tuple(
                (f, getattr(old, f), getattr(new, f))
                for f in SYNC_FIELDS
                if getattr(old, f) != getattr(new, f)
            )
            changes.append(AliasChange(name, "changed", fields))
    return changes


async def explicitly_sized(conn: asyncpg.Connection) -> set[uuid.UUID]:
    """Ids of the tenants whose pool size was set with ``pool set-size`` (an audited step)."""
    rows = await conn.fetch(
        "SELECT DISTINCT tenant_id FROM public.tenant_audit_log "
        "WHERE action_type = 'pool.set_size' AND tenant_id IS NOT NULL"
    )
    return {row["tenant_id"] for row in rows}
