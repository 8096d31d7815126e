"""Progress events: what an operation is doing, consumed alike by the CLI and the UI."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.core.hints import Hint


class Phase(enum.StrEnum):
    """Where a step stands."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    INFO = "info"


@dataclass(frozen=True)
class StepEvent:
    """One step of one operation on one tenant (``tenant`` is None for cluster-wide work);
    a FAILED step's ``hint`` says what the operator can do about it."""

    operation: str
    tenant: str | None
    step: str
    phase: Phase
    message: str = ""
    duration_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    hint: Hint | None = None


EventSink = Callable[[StepEvent], None]


def discard(_event: StepEvent) -> None:
    """An EventSink that ignores everything."""
