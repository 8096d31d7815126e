"""Restoring one tenant to a point in time: the schemas a restore makes and the plan it follows.

A restore builds a *recovery* schema ``tenant_<key>__recovery_<stamp>`` beside the live one,
switches the two (the live one becomes ``tenant_<key>__replaced_<stamp>``, kept for
``backup.keep_replaced_days``) and can switch back (rollback). Names stay within PostgreSQL's 63
bytes: a key too long for them is cut and followed by 8 hex digits of its sha256, so each key
has its own prefix; a name already taken gets ``_2``, ``_3``… A replaced schema's comment holds
JSON (tenant id, when it was replaced, until when it is kept).

The plan (:func:`plan_restore`) is the chain to restore: the newest succeeded backup covering
no later than the target (or the backup asked for), with its ancestors back to the full. A
chain is refused, naming the link, when a link is missing (expired, files gone), failed, or
failed its last verification. A link never verified is checked at the checksum level by the
restore before anything is created (and the check recorded); the restore itself re-reads and
checks every file against its sha256 and every table against its manifest, so a restore drill
(:mod:`~console.core.backups.drill`) is what records a link as verified at the ``restore``
level.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from console.core.backups import catalog
from console.core.backups.catalog import BackupKind, BackupRecord, BackupStatus
from console.core.backups.plan import missing_files
from console.core.errors import InvalidInput, InvalidState, NotFound
from console.core.hints import Field
from console.core.identifiers import TENANT_SCHEMA_PREFIX
from console.core.tenants.registry import Tenant, TenantStatus

RECOVERY = "recovery"
REPLACED = "replaced"
NAME_LIMIT = 63
STAMP_FORMAT = "%Y%m%dt%H%M%S"
_STAMP_RE = r"\d{8}t\d{6}(?:_\d+)?"


def schema_prefix(key: str, kind: str) -> str:
    """``tenant_<key>__<kind>_``, the key cut and hashed when the whole name (with a stamp and a
    ``_NN`` suffix) would pass 63 bytes."""
    room = NAME_LIMIT - len(TENANT_SCHEMA_PREFIX) - len(f"__{kind}_") - 15 - 3
    part = key
    if len(key) > room:
        part = key[: room - 9] + "_" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{TENANT_SCHEMA_PREFIX}{part}__{kind}_"


def side_schema(key: str, kind: str, at: datetime, taken: set[str]) -> str:
    """A new ``kind`` (recovery or replaced) schema name for ``key`` at ``at``, not in
    ``taken``."""
    base = schema_prefix(key, kind) + at.astimezone(UTC).strftime(STAMP_FORMAT)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def is_side_schema(key: str, kind: str, name: str) -> bool:
    """Whether ``name`` has the form of a ``kind`` schema of tenant ``key``."""
    return re.fullmatch(re.escape(schema_prefix(key, kind)) + _STAMP_RE, name) is not None


async def side_schemas(
    conn: asyncpg.Connection, tenant: Tenant, kind: str
) -> list[tuple[str, dict[str, Any]]]:
    """The tenant's ``kind`` schemas, oldest first, each with its comment's JSON ({} when none);
    a registered tenant's own schema is never one."""
    prefix = schema_prefix(tenant.key, kind)
    rows = await conn.fetch(
        "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') AS note "
        "FROM pg_namespace n WHERE starts_with(n.nspname, $1) "
        "AND NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.schema_name = n.nspname) "
        "ORDER BY n.nspname",
        prefix,
    )
    found = []
    for row in rows:
        if not is_side_schema(tenant.key, kind, row["nspname"]):
            continue
        try:
            note = json.loads(row["note"]) if row["note"] else {}
        except ValueError:
            note = {}
        if note and note.get("tenant_id") != str(tenant.id):
            continue
        found.append((row["nspname"], note if isinstance(note, dict) else {}))
    return found


async def taken_names(conn: asyncpg.Connection, prefix: str) -> set[str]:
    """Schema names starting with ``prefix``."""
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
    )
    return {r[0] for r in rows}


@dataclass(frozen=True)
class RestorePlan:
    """What a restore of one tenant will do (``backups restore --dry-run`` prints it)."""

    tenant: str
    tenant_id: uuid.UUID
    status: TenantStatus
    target: datetime | None
    backup_id: str | None
    links: tuple[BackupRecord, ...]
    head_revision: str
    pool: str
    unchecked: tuple[uuid.UUID, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def last(self) -> BackupRecord:
        """The link the result reflects."""
        return self.links[-1]

    @property
    def reflects(self) -> datetime | None:
        """The point in time the restored data reflects (the last link's ``covers_until``)."""
        return self.last.covers_until

    @property
    def distance_s(self) -> float | None:
        """Seconds between the requested target and :attr:`reflects` (None: a backup was
        named)."""
        if self.target is None or self.reflects is None:
            return None
        return (self.target - self.reflects).total_seconds()

    @property
    def expected_bytes(self) -> int:
        """Plaintext bytes the restore reads (what pg_restore and COPY receive)."""
        return sum(r.raw_bytes or r.bytes or 0 for r in self.links)

    @property
    def migrate_from(self) -> str | None:
        """The tree revision the recovery schema is migrated from (None: already at head)."""
        revision = self.last.tree_revision
        return revision if revision != self.head_revision else None

    @property
    def recreate(self) -> bool:
        """Whether the tenant is ARCHIVED: its schema is re-created and left INACTIVE."""
        return self.status is TenantStatus.ARCHIVED

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "status": self.status.value,
            "target": self.target.isoformat() if self.target else None,
            "backup_id": self.backup_id,
            "links": [r.as_json() for r in self.links],
            "reflects": self.reflects.isoformat() if self.reflects else None,
            "distance_s": self.distance_s,
            "expected_bytes": self.expected_bytes,
            "pool": self.pool,
            "tree_revision": self.last.tree_revision,
            "head_revision": self.head_revision,
            "migrate_from": self.migrate_from,
            "recreate": self.recreate,
            "unchecked": [str(i) for i in self.unchecked],
            "notes": list(self.notes),
        }


def parse_target(value: str) -> datetime:
    """A ``--to`` timestamp (ISO 8601; without a zone: UTC); InvalidInput otherwise."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"target {value!r} is not a timestamp: give ISO 8601, e.g. 2026-12-01T03:00:00+00:00",
            field=Field.TARGET,
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def choose_chain(
    conn: asyncpg.Connection,
    tenant: Tenant,
    to: datetime | None,
    backup_id: str | None,
) -> list[BackupRecord]:
    """The chain to restore (full first), checked link by link; InvalidInput / InvalidState /
    NotFound with one line naming what is wrong."""
    if (to is None) == (backup_id is None):
        raise InvalidInput("give exactly one of a target time or a backup id")
    if backup_id is not None:
        try:
            wanted = uuid.UUID(backup_id)
        except ValueError:
            raise InvalidInput(
                f"{backup_id!r} is not a backup id (a UUID, as 'backups list' shows)"
            ) from None
        record = await catalog.get(conn, wanted)
        if record is None or record.tenant_id != tenant.id:
            raise NotFound(f"tenant {tenant.key!r} has no backup {backup_id}")
    else:
        assert to is not None
        candidates = [
            r
            for r in await catalog.history(conn, tenant.id, include_expired=False)
            if r.status is BackupStatus.SUCCEEDED and r.covers_until and r.covers_until <= to
        ]
        if not candidates:
            raise NotFound(
                f"tenant {tenant.key!r} has no succeeded backup covering {to.isoformat()} or "
                "earlier"
            )
        record = max(candidates, key=lambda r: (r.covers_until, r.started_at))
    chain = await catalog.chain(conn, record.id)
    if not chain or chain[0].kind is not BackupKind.FULL:
        raise InvalidState(f"backup {record.id}: its chain does not start with a full backup")
    for link in chain:
        refuse_link(link)
    return chain


def refuse_link(link: BackupRecord) -> None:
    """InvalidState naming ``link`` when it cannot be restored from."""
    what = f"backup {link.id} ({link.kind}, {link.started_at:%Y-%m-%d %H:%M})"
    if link.status is not BackupStatus.SUCCEEDED:
        raise InvalidState(f"{what} is {link.status}: the chain cannot be restored")
    if link.verify_result is not None and not link.verified:
        raise InvalidState(f"{what} failed its last verification: {link.verify_result}")
    gone = missing_files(link)
    if gone:
        raise InvalidState(f"{what} is missing {gone[0]}: the chain cannot be restored")
