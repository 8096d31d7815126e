"""Operations started from the UI: their events and outcome, kept while screens come and go."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from console.core.events import StepEvent


class OpState(enum.StrEnum):
    """Where a tracked operation stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class TrackedOperation:
    """One operation on one tenant, with every event it emitted."""

    name: str
    key: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    events: list[StepEvent] = field(default_factory=list)
    state: OpState = OpState.RUNNING
    outcome: str = ""
    report: list[str] = field(default_factory=list)  # lines shown after the events


class OperationTracker:
    """The latest operation per tenant key."""

    def __init__(self) -> None:
        self._latest: dict[str, TrackedOperation] = {}

    def start(self, name: str, key: str) -> TrackedOperation:
        """Record a new running operation (replacing the key's previous one)."""
        op = TrackedOperation(name, key)
        self._latest[key] = op
        return op

    def latest(self, key: str) -> TrackedOperation | None:
        """The key's most recent operation."""
        return self._latest.get(key)

    def running(self) -> list[TrackedOperation]:
        """Operations still in progress."""
        return [op for op in self._latest.values() if op.state is OpState.RUNNING]
