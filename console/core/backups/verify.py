"""Verification of stored backups, recorded in the catalog.

What is verified: each tenant's newest chain, every link from its full to its newest succeeded
backup, which is what restoring the tenant's latest state needs. Two levels:

- ``checksum``: each link's files re-read (size, sha256), decrypted and decompressed, a full's
  archive listing every table, an incremental's files their row counts
  (:func:`~console.core.backups.check.check_stored`);
- ``restore``: the chain restored into a scratch database and every link's tables compared with
  its manifest (:mod:`console.core.backups.restore`); the files are checked on the way.

Each tenant is one operation ``verify`` (lock, audit, events). Each link's ``verified_at``,
``verify_result`` (``ok`` or ``<failure>: <message>``) and ``verify_level`` are recorded. The
failures are named: ``missing-file``, ``truncated``, ``checksum-mismatch``, ``wrong-key`` (a
damaged or unreadable file), ``content-mismatch`` (the files do not hold what the manifest
lists), ``restore-error`` (pg_restore or applying a link failed), ``digest-mismatch`` (restored
data differs from the manifest), ``chain-broken`` (an earlier link failed, so this one was not
restored).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyrage

from console.config import BackupSettings
from console.core.backups import catalog
from console.core.backups.catalog import BackupRecord, BackupStatus
from console.core.backups.check import check_stored, record_check
from console.core.backups.keys import configured_identities
from console.core.backups.reading import BackupCorrupt
from console.core.backups.report import BackupProgress, fan_out
from console.core.backups.restore import (
    ChainRestore,
    ChainRestorer,
    Link,
    LinkTiming,
    RestoreFailed,
)
from console.core.backups.scratch import Scratch, scratch_database
from console.core.binaries import PgBinaries
from console.core.db import ConnectionSpec, Database
from console.core.errors import ConsoleError, NotFound, OperationFailed
from console.core.events import EventSink, discard
from console.core.identifiers import validate_tenant_key
from console.core.operations import Operation, OperationRunner
from console.core.tenants.registry import Registry

CHECKSUM = "checksum"
RESTORE = "restore"


class VerificationFailed(OperationFailed):
    """A tenant's backups did not verify; the message is the first failure."""

    title = "Verification failed"


def failure_result(exc: ConsoleError) -> str:
    """The ``verify_result`` of a failed check: ``<failure name>: <message>``."""
    kind = getattr(exc, "kind", "content-mismatch")
    return exc.message if exc.message.startswith(f"{kind}:") else f"{kind}: {exc.message}"


@dataclass(frozen=True)
class LinkResult:
    """The verdict on one backup of a chain, at ``level``."""

    record: BackupRecord
    level: str
    result: str

    @property
    def ok(self) -> bool:
        """Whether the backup verified."""
        return self.result == "ok"

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "id": str(self.record.id),
            "kind": self.record.kind.value,
            "level": self.level,
            "result": self.result,
        }


@dataclass
class TenantVerification:
    """One tenant's verification: each link's verdict, the restore test's timings, and the
    error that stopped it (busy, nothing to verify, a scratch database left behind)."""

    key: str
    links: list[LinkResult] = field(default_factory=list)
    restore: ChainRestore | None = None
    scratch: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every link verified and nothing else went wrong."""
        return self.error is None and all(link.ok for link in self.links)

    @property
    def failure(self) -> str | None:
        """The first thing that went wrong, or None."""
        failed = next((link.result for link in self.links if not link.ok), None)
        return failed or self.error

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.key,
            "result": "ok" if self.ok else "failed",
            "failure": self.failure,
            "links": [link.as_json() for link in self.links],
            "restore": (
                {
                    "scratch_database": self.scratch,
                    "total_ms": round(self.restore.total_ms, 1),
                    "links": [t.as_json() for t in self.restore.links],
                }
                if self.restore
                else None
            ),
        }


@dataclass
class VerifyReport:
    """Every tenant's verification, in the order asked."""

    restore_test: bool
    tenants: list[TenantVerification] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def failures(self) -> list[TenantVerification]:
        """Tenants whose verification failed."""
        return [t for t in self.tenants if not t.ok]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "level": RESTORE if self.restore_test else CHECKSUM,
            "total": len(self.tenants),
            "verified": len(self.tenants) - len(self.failures),
            "failed": len(self.failures),
            "elapsed_s": round(self.elapsed_s, 3),
            "tenants": [t.as_json() for t in self.tenants],
        }


class Verifier:
    """Verifies tenants' newest chains and records the verdicts."""

    def __init__(
        self,
        db: Database,
        spec: ConnectionSpec,
        binaries: PgBinaries,
        settings: BackupSettings,
        runner: OperationRunner,
        registry: Registry,
    ) -> None:
        self._db = db
        self._spec = spec
        self._binaries = binaries
        self._settings = settings
        self._runner = runner
        self._registry = registry

    async def targets(self, keys: Sequence[str] | None) -> list[str]:
        """``keys`` checked to exist (in order, once each), or every tenant with a succeeded
        backup (whatever its status: an archived tenant's backups are its last copy)."""
        async with self._db.acquire() as conn:
            if keys is None:
                rows = await conn.fetch(
                    "SELECT t.key FROM public.tenants t WHERE EXISTS (SELECT 1 FROM "
                    "public.backups b WHERE b.tenant_id = t.id AND b.status = 'succeeded') "
                    "ORDER BY t.key"
                )
                return [r[0] for r in rows]
            for key in keys:
                validate_tenant_key(key)
                await self._registry.require(conn, key)
        return list(dict.fromkeys(keys))

    async def verify(
        self,
        keys: Sequence[str],
        *,
        restore_test: bool,
        workers: int,
        sink: EventSink = discard,
        progress: BackupProgress | None = None,
    ) -> VerifyReport:
        """Verify the newest chain of each of ``keys``, ``workers`` at once; one tenant's
        failure never stops the others."""
        identities = configured_identities(self._settings)
        started = time.perf_counter()
        progress = progress or BackupProgress()
        outcomes = await fan_out(
            keys,
            workers,
            progress,
            lambda key: self._verify_one(key, restore_test, identities, sink, progress),
            lambda outcome: outcome.ok,
        )
        return VerifyReport(restore_test, outcomes, time.perf_counter() - started)

    async def _verify_one(
        self,
        key: str,
        restore_test: bool,
        identities: list[pyrage.x25519.Identity],
        sink: EventSink,
        progress: BackupProgress,
    ) -> TenantVerification:
        outcome = TenantVerification(key)
        try:
            async with self._runner.run("verify", key, sink) as op:
                chain = await self.newest_chain(op, key)
                if restore_test:
                    await self._restore_test(op, chain, identities, outcome, progress)
                else:
                    await self._checksums(op, chain, outcome)
                await self._record(op, outcome)
                if not outcome.ok:
                    raise VerificationFailed(f"verify {key}: {outcome.failure}")
        except ConsoleError as exc:
            if outcome.ok:
                outcome.error = exc.message
        return outcome

    async def newest_chain(self, op: Operation, key: str) -> list[Link]:
        """The tenant's newest chain with manifests (the operation's tenant id set)."""
        async with self._db.acquire() as conn:
            tenant = await self._registry.require(conn, key)
            op.tenant_id = tenant.id
            newest = next(
                (
                    r
                    for r in await catalog.history(conn, tenant.id, include_expired=False)
                    if r.status is BackupStatus.SUCCEEDED
                ),
                None,
            )
            if newest is None:
                raise NotFound(f"tenant {key!r} has no succeeded backup to verify")
            links = []
            for record in await catalog.chain(conn, newest.id):
                manifest = await catalog.manifest_of(conn, record.id)
                if manifest is None:
                    raise OperationFailed(
                        f"backup {record.id} has no manifest (an older format): take a full "
                        "backup and verify that"
                    )
                links.append(Link(record, manifest))
        return links

    async def _checksums(
        self, op: Operation, chain: list[Link], outcome: TenantVerification
    ) -> None:
        for link in chain:
            record = link.record
            result = "ok"
            try:
                async with op.step(CHECKSUM, f"checking {record.kind} {record.id}") as step:
                    step.details["backup"] = str(record.id)
                    await check_stored(record, link.manifest, self._settings, self._binaries)
            except OperationFailed as exc:
                result = failure_result(exc)
            outcome.links.append(LinkResult(record, CHECKSUM, result))

    async def _restore_test(
        self,
        op: Operation,
        chain: list[Link],
        identities: list[pyrage.x25519.Identity],
        outcome: TenantVerification,
        progress: BackupProgress,
    ) -> None:
        restorer = ChainRestorer(self._binaries, identities)
        done: list[LinkTiming] = []

        def link_done(timing: LinkTiming) -> None:
            done.append(timing)
            progress.add_bytes(timing.raw_bytes)

        scratch: Scratch | None = None
        failure: str | None = None
        message = f"restoring {len(chain)} backup(s) into a scratch database"
        try:
            async with op.step(RESTORE, message) as step:
                async with scratch_database(self._db, self._spec) as scratch:
                    step.details["scratch_database"] = scratch.name
                    await restorer.restore_chain(scratch.spec, chain, link_done)
                step.details["links"] = [t.as_json() for t in done]
        except (BackupCorrupt, RestoreFailed) as exc:
            failure = failure_result(exc)
        outcome.restore = ChainRestore(done)
        outcome.scratch = scratch.name if scratch else None
        for index, link in enumerate(chain):
            result = "ok" if index < len(done) else failure or "restore-error: not restored"
            if index > len(done):
                result = f"chain-broken: backup {chain[len(done)].record.id} did not restore"
            outcome.links.append(LinkResult(link.record, RESTORE, result))
        if scratch is not None and scratch.drop_error:
            outcome.error = scratch.drop_error

    async def _record(self, op: Operation, outcome: TenantVerification) -> None:
        async with op.step("record", "recording the verdicts") as step:
            async with self._db.acquire() as conn, conn.transaction():
                for link in outcome.links:
                    await record_check(conn, link.record.id, link.level, link.result)
            step.details["results"] = {str(link.record.id): link.result for link in outcome.links}
