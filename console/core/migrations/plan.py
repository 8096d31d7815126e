"""Planning tenant migrations: every tenant's revision read at once, classified against the
target (:class:`RevisionState`), the tenants behind grouped by starting revision, and each group's
SQL rendered once with alembic's offline mode (or left to alembic when a revision declares
``OFFLINE_SAFE = False``). ACTIVE and INACTIVE tenants are migrated (:mod:`console.core.states`);
the others are skipped (provisioning always builds at head).
"""

from __future__ import annotations

import asyncio
import functools
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import asyncpg

from console.core.db import Database
from console.core.errors import InvalidInput
from console.core.identifiers import SqlTemplate
from console.core.migrations.tree import (
    ALEMBIC_LOCK,
    alembic_config,
    head_revision,
    script_directory,
)
from console.core.states import Action, allowed_from
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.stats import schema_revisions

RENDER_SCHEMA = "goconsole_render_target"
RENDER_TENANT_ID = uuid.UUID(int=0)
_SPARE_WAIT_S = 2.0


class RevisionState(StrEnum):
    """Where a tenant's revision stands against a target revision (head unless given): the one
    classification ``migrate status``, ``migrate plan`` and the Migrations screen share."""

    AT_TARGET = "head"
    BEHIND = "behind"  # a known revision before the target: a run moves it
    UNKNOWN = "unknown"  # ahead of the target, not in this code's tree, or no version row


def classify_revision(revision: str | None, target: str, order: dict[str, int]) -> RevisionState:
    """Classify ``revision`` against ``target``; ``order`` ranks the tree's revisions."""
    if revision is None or revision not in order:
        return RevisionState.UNKNOWN
    if revision == target:
        return RevisionState.AT_TARGET
    return RevisionState.BEHIND if order[revision] < order[target] else RevisionState.UNKNOWN


@dataclass(frozen=True)
class RevisionCount:
    """How many migratable tenants are at one revision (``(none)``: no version row)."""

    revision: str
    tenants: int
    state: RevisionState

    @property
    def at_head(self) -> bool:
        """Whether this is the head revision."""
        return self.state is RevisionState.AT_TARGET

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (what ``migrate status --json`` lists)."""
        return {
            "revision": self.revision,
            "tenants": self.tenants,
            "at_head": self.at_head,
            "state": self.state.value,
        }


@dataclass(frozen=True)
class MigrationStatus:
    """Tenants per revision against head (in tree order), and how many are behind (a run
    moves them) or at an unknown revision (none moves them)."""

    head: str
    behind: int
    unknown: int
    revisions: list[RevisionCount]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict (what ``migrate status --json`` prints)."""
        return {
            "head": self.head,
            "behind": self.behind,
            "unknown": self.unknown,
            "revisions": [r.as_json() for r in self.revisions],
        }


@dataclass
class PlanGroup:
    """Tenants moving from one revision to the target the same way."""

    from_rev: str
    to_rev: str
    tenants: list[Tenant]
    sql: str | None  # rendered with placeholders; None = run through alembic processes
    reason: str = ""

    @property
    def method(self) -> str:
        """``sql`` (pre-rendered) or ``alembic`` (process pool)."""
        return "sql" if self.sql is not None else "alembic"

    @functools.cached_property
    def template(self) -> SqlTemplate:
        """The rendered SQL, split once for rewriting per tenant."""
        assert self.sql is not None
        return SqlTemplate(self.sql, RENDER_SCHEMA, RENDER_TENANT_ID)

    def as_json(self, with_sql: bool = True) -> dict[str, Any]:
        """JSON-ready dict."""
        data: dict[str, Any] = {
            "from": self.from_rev,
            "to": self.to_rev,
            "tenants": [t.key for t in self.tenants],
            "method": self.method,
        }
        if self.reason:
            data["reason"] = self.reason
        if with_sql and self.sql is not None:
            data["sql"] = display_sql(self.sql)
        return data


@dataclass
class MigrationPlan:
    """What a run would do."""

    target: str
    groups: list[PlanGroup] = field(default_factory=list)
    at_target: list[Tenant] = field(default_factory=list)
    skipped: list[tuple[Tenant, str]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """How many tenants would be migrated."""
        return sum(len(g.tenants) for g in self.groups)

    def as_json(self, with_sql: bool = True) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "target": self.target,
            "pending": self.pending,
            "at_target": len(self.at_target),
            "groups": [g.as_json(with_sql) for g in self.groups],
            "skipped": [{"tenant": t.key, "reason": r} for t, r in self.skipped],
        }


def display_sql(sql: str) -> str:
    """Rendered SQL with the placeholders shown as such."""
    return sql.replace(RENDER_SCHEMA, "<tenant schema>").replace(
        str(RENDER_TENANT_ID), "<tenant id>"
    )


def offline_unsafe(from_rev: str, to_rev: str) -> list[str]:
    """Revisions between the two that declare ``OFFLINE_SAFE = False``."""
    script = script_directory("tenant")
    unsafe = []
    for rev in script.iterate_revisions(to_rev, from_rev):
        if getattr(rev.module, "OFFLINE_SAFE", True) is False:
            unsafe.append(rev.revision)
    return unsafe


def render_sql(from_rev: str, to_rev: str) -> str:
    """The tenant tree's SQL from ``from_rev`` to ``to_rev`` for the placeholder schema, without
    the BEGIN/COMMIT (the runner owns the transaction)."""
    from alembic import command  # loads alembic and SQLAlchemy: only when SQL is rendered

    buffer = io.StringIO()
    cfg = alembic_config("tenant")
    cfg.output_buffer = buffer
    cfg.attributes.update(schema=RENDER_SCHEMA, tenant_id=str(RENDER_TENANT_ID))
    with ALEMBIC_LOCK:
        command.upgrade(cfg, f"{from_rev}:{to_rev}", sql=True)
    lines = [
        line for line in buffer.getvalue().splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")
    ]
    return "\n".join(lines).strip() + "\n"


def revision_order() -> dict[str, int]:
    """The tenant tree's revisions ranked from base (0) to head."""
    revs = list(script_directory("tenant").walk_revisions("base", "heads"))
    return {r.revision: i for i, r in enumerate(reversed(revs))}


def _unknown_reason(revision: str | None, target: str, order: dict[str, int]) -> str:
    """Why a tenant classified UNKNOWN against ``target`` is not migrated."""
    if revision is None:
        return "schema or version table missing"
    if revision not in order:
        return f"unknown revision {revision}"
    return f"at {revision}, ahead of {target}: no downgrades"


class Planner:
    """Reads every tenant's revision and plans runs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def revisions(self) -> list[tuple[Tenant, str | None]]:
        """Every tenant with its schema's current revision (None: no schema or no version)."""
        async with self._db.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM public.tenants ORDER BY key")
            async with self._spare_connection() as spare:
                revisions = await schema_revisions(conn, *([spare] if spare is not None else []))
        tenants = [Tenant.from_row(r) for r in rows]
        return [(t, revisions.get(t.schema_name)) for t in tenants]

    @asynccontextmanager
    async def _spare_connection(self) -> AsyncIterator[asyncpg.Connection | None]:
        """A second pooled connection to read revisions with, when one is free right away."""
        pool = self._db.pool
        if not pool.get_idle_size() and pool.get_size() >= pool.get_max_size():
            yield None
            return
        try:
            proxy = await pool.acquire(timeout=_SPARE_WAIT_S)
        except TimeoutError:
            yield None
            return
        try:
            yield cast(asyncpg.Connection, proxy)
        finally:
            await pool.release(proxy)

    async def status(self) -> MigrationStatus:
        """Tenants per revision, each classified against head (:func:`classify_revision`), and
        how many are behind (a run moves them) or at an unknown revision (none moves them)."""
        head = head_revision("tenant")
        order = revision_order()
        counts: dict[str, int] = {}
        states: dict[str, RevisionState] = {}
        for tenant, revision in await self.revisions():
            if tenant.status not in allowed_from(Action.MIGRATE):
                continue
            label = revision or "(none)"
            counts[label] = counts.get(label, 0) + 1
            states[label] = classify_revision(revision, head, order)
        total = {state: 0 for state in RevisionState}
        for label, n in counts.items():
            total[states[label]] += n
        return MigrationStatus(
            head,
            total[RevisionState.BEHIND],
            total[RevisionState.UNKNOWN],
            [
                RevisionCount(rev, n, states[rev])
                for rev, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
            ],
        )

    async def plan(
        self,
        target: str | None = None,
        keys: list[str] | None = None,
        status: TenantStatus | None = None,
    ) -> MigrationPlan:
        """Who moves from where to ``target`` (default head), and the SQL of each group."""
        order = revision_order()
        to = target or head_revision("tenant")
        if to not in order:
            allowed = ", ".join(sorted(order, key=order.__getitem__))
            raise InvalidInput(f"unknown revision {to!r}; known: {allowed}")
        plan = MigrationPlan(to)
        wanted = set(keys) if keys else None
        seen: set[str] = set()
        groups: dict[str, list[Tenant]] = {}
        for tenant, revision in await self.revisions():
            if wanted is not None and tenant.key not in wanted:
                continue
            seen.add(tenant.key)
            if status is not None and tenant.status is not status:
                continue
            if tenant.status not in allowed_from(Action.MIGRATE):
                plan.skipped.append((tenant, f"status {tenant.status}: not migrated"))
                continue
            match classify_revision(revision, to, order):
                case RevisionState.AT_TARGET:
                    plan.at_target.append(tenant)
                case RevisionState.BEHIND:
                    assert revision is not None
                    groups.setdefault(revision, []).append(tenant)
                case RevisionState.UNKNOWN:
                    plan.skipped.append((tenant, _unknown_reason(revision, to, order)))
        if wanted is not None and wanted - seen:
            raise InvalidInput(f"unknown tenant key(s): {', '.join(sorted(wanted - seen))}")
        for from_rev in sorted(groups, key=order.__getitem__):
            unsafe = offline_unsafe(from_rev, to)
            if unsafe:
                group = PlanGroup(
                    from_rev,
                    to,
                    groups[from_rev],
                    None,
                    f"revision(s) {', '.join(unsafe)} cannot be rendered offline",
                )
            else:
                sql = await asyncio.to_thread(render_sql, from_rev, to)
                group = PlanGroup(from_rev, to, groups[from_rev], sql)
            plan.groups.append(group)
        return plan
