"""Bulk provisioning's request checks and its report: how each requested key ended, with the
counts a progress display shows while it runs (see :mod:`console.core.tenants.bulk`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.core.errors import InvalidInput
from console.core.events import EventSink, Phase, StepEvent
from console.core.hints import Field, KeysFromFile
from console.core.identifiers import validate_tenant_key
from console.core.operations import max_workers
from console.core.tenants.registry import Tenant, display_name_for

# Connections the bulk path holds besides its workers: the one for locks and registry statements.
HELD_CONNECTIONS = 1
OPERATION = "provision"


@dataclass(frozen=True)
class TenantOutcome:
    """How one requested key ended: ``active``, ``failed`` or ``busy`` (with step and error);
    ``resumed`` when the single-tenant path finished it (left by an earlier run, or its schema
    existed already)."""

    key: str
    result: str
    step: str | None = None
    error: str | None = None
    tenant: Tenant | None = None
    resumed: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "key": self.key,
            "result": self.result,
            "step": self.step,
            "error": self.error,
            "id": str(self.tenant.id) if self.tenant else None,
            "resumed": self.resumed,
        }


@dataclass
class BulkReport:
    """Counts while a bulk provision runs (sent to its progress callback after every tenant),
    then every key's outcome."""

    keys: list[str]
    outcomes: dict[str, TenantOutcome] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    skipped: int = 0  # busy: another operation held the tenant's lock (reported as failed-busy)
    started: float = field(default_factory=time.perf_counter)
    elapsed_s: float | None = None  # set when the run is over

    @property
    def total(self) -> int:
        """Keys requested."""
        return len(self.keys)

    @property
    def remaining(self) -> int:
        """Keys without an outcome yet."""
        return self.total - self.done - self.failed - self.skipped

    @property
    def rate(self) -> float:
        """Tenants finished (either way) per second."""
        elapsed = (
            self.elapsed_s if self.elapsed_s is not None else time.perf_counter() - self.started
        )
        return (self.total - self.remaining) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate."""
        return self.remaining / self.rate if self.rate > 0 else None

    def record(self, outcome: TenantOutcome) -> None:
        """Count one key's outcome."""
        self.outcomes[outcome.key] = outcome
        if outcome.result == "active":
            self.done += 1
        elif outcome.result == "busy":
            self.skipped += 1
        else:
            self.failed += 1

    def unsuccessful(self) -> list[TenantOutcome]:
        """Outcomes other than ACTIVE, in request order."""
        return [o for k in self.keys if (o := self.outcomes[k]).result != "active"]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready summary, every key in request order."""
        return {
            "total": self.total,
            "succeeded": self.done,
            "failed": self.failed,
            "skipped_busy": self.skipped,
            "elapsed_s": round(self.elapsed_s or 0.0, 3),
            "tenants_per_s": round(self.rate, 1),
            "tenants": [self.outcomes[k].as_json() for k in self.keys if k in self.outcomes],
        }


BulkProgress = Callable[[BulkReport], None]


def no_progress(_report: BulkReport) -> None:
    """A BulkProgress that ignores everything."""


def check_request(
    keys: Sequence[str], names: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(key, display name) of every requested key, in order; InvalidInput, before any SQL, when
    there is none, a key is invalid or repeated, or a display name is wrong."""
    if not keys:
        raise InvalidInput("no tenant key given: name one or more keys", hint=KeysFromFile())
    for key in keys:
        validate_tenant_key(key)
    repeated = sorted(k for k, n in Counter(keys).items() if n > 1)
    if repeated:
        raise InvalidInput(
            f"tenant key(s) given more than once: {_listing(repeated)}; each key may appear once"
        )
    given = names or {}
    stray = sorted(set(given) - set(keys))
    if stray:
        raise InvalidInput(f"display name(s) given for key(s) not requested: {_listing(stray)}")
    return [(key, display_name_for(key, given.get(key))) for key in keys]


def check_concurrency(concurrency: int, pool_size: int) -> None:
    """InvalidInput unless the console's pool (``pool_size`` connections) can serve
    ``concurrency`` workers besides the connection(s) the bulk path holds."""
    workers = max_workers(pool_size, HELD_CONNECTIONS)
    if not 1 <= concurrency <= workers:
        raise InvalidInput(
            f"concurrency {concurrency} is out of range 1-{workers}: bulk provisioning holds "
            f"{HELD_CONNECTIONS} connection for its locks plus one per concurrent tenant, and the "
            f"console's pool has {pool_size} (pool_max_size of the cluster; raise it for more)",
            field=Field.CONCURRENCY,
        )


def _listing(items: list[str], shown: int = 10) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


@dataclass
class BulkRun:
    """The report, the event sink and the progress callback of one run."""

    report: BulkReport
    sink: EventSink
    progress: BulkProgress

    def event(
        self, key: str | None, step: str, phase: Phase, message: str = "", **extra: Any
    ) -> None:
        """Send one event."""
        self.sink(StepEvent(OPERATION, key, step, phase, message, **extra))

    def succeeded(self, tenant: Tenant, resumed: bool = False) -> None:
        """``tenant`` is ACTIVE."""
        self.report.record(TenantOutcome(tenant.key, "active", tenant=tenant, resumed=resumed))
        self.progress(self.report)

    def failed(
        self,
        key: str,
        step: str,
        error: str,
        *,
        tenant: Tenant | None = None,
        busy: bool = False,
        resumed: bool = False,
        announce: bool = True,
    ) -> None:
        """``key`` (registered as ``tenant``, if it got that far) failed at ``step`` or was
        busy; a FAILED event unless ``announce`` is False (the single-tenant path sent it)."""
        if announce:
            self.event(key, step, Phase.FAILED, error)
        result = "busy" if busy else "failed"
        self.report.record(TenantOutcome(key, result, step, error, tenant, resumed))
        self.progress(self.report)
