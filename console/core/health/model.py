"""What a health check found: :class:`Check` (value, threshold, state in words) and the
:class:`HealthReport` of one run; :func:`grade` turns a value and two thresholds into a state."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


class State(enum.StrEnum):
    """A check's state, always shown in words (never colour alone)."""

    OK = "OK"
    WARN = "WARN"
    CRIT = "CRIT"
    UNKNOWN = "UNKNOWN"


# Worst first: UNKNOWN ranks between WARN and CRIT (something could not be checked).
_RANK = {State.OK: 0, State.WARN: 1, State.UNKNOWN: 2, State.CRIT: 3}


def worst(states: Iterable[State]) -> State:
    """The worst of ``states`` (OK when there are none)."""
    return max(states, key=_RANK.__getitem__, default=State.OK)


def grade(value: float, warn: float, crit: float) -> State:
    """CRIT at or above ``crit``, WARN at or above ``warn``, else OK."""
    if value >= crit:
        return State.CRIT
    if value >= warn:
        return State.WARN
    return State.OK


@dataclass(frozen=True)
class Check:
    """One check's finding. ``group`` is the tile it counts towards (server, replication,
    connections, pools, backups, jobs); ``value`` the number sampled for graphs, if any."""

    name: str
    group: str
    state: State
    shown: str  # the value in words: "3.2 ms", "12 of 197 (6%)"
    threshold: str = ""  # "warn 100 ms, crit 1000 ms"
    detail: str = ""
    value: float | None = None
    since: datetime | None = None  # when the check entered its state (from samples)

    def with_since(self, since: datetime | None) -> Check:
        """This check with ``since`` set."""
        return replace(self, since=since)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "group": self.group,
            "state": self.state.value,
            "value": self.value,
            "shown": self.shown,
            "threshold": self.threshold,
            "detail": self.detail,
            "since": self.since.isoformat() if self.since else None,
        }


def limits(warn: float, crit: float, unit: str = "") -> str:
    """``warn 10 s, crit 60 s`` for a check's threshold column."""
    return f"warn {warn:g}{unit}, crit {crit:g}{unit}"


GROUPS = ("server", "replication", "connections", "pools", "backups", "jobs")


@dataclass(frozen=True)
class HealthReport:
    """Every check of one run, in a fixed order."""

    taken_at: datetime
    checks: tuple[Check, ...]
    duration_ms: float = 0.0
    recorded: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def state(self) -> State:
        """The worst state of all checks."""
        return worst(c.state for c in self.checks)

    def group_state(self, group: str) -> State:
        """The worst state among the checks of ``group``."""
        return worst(c.state for c in self.checks if c.group == group)

    def by_group(self, group: str) -> list[Check]:
        """The checks of ``group``."""
        return [c for c in self.checks if c.group == group]

    def check(self, name: str) -> Check | None:
        """The check called ``name``."""
        return next((c for c in self.checks if c.name == name), None)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict: overall state, per-group states and every check."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "state": self.state.value,
            "groups": {g: self.group_state(g).value for g in GROUPS},
            "duration_ms": round(self.duration_ms, 3),
            "recorded": self.recorded,
            "notes": list(self.notes),
            "checks": [c.as_json() for c in self.checks],
        }
