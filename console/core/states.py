"""The tenant state machine: which action is allowed from which status, and the status each
step of an action leaves. Lifecycle and pool operations ask it; front ends can too
(:func:`actions_from`).

    INITIALIZING -> ACTIVE <-> (DEACTIVATING ->) INACTIVE
    ACTIVE/INACTIVE -> OFFBOARDING -> ARCHIVED
    INITIALIZING -> FAILED -> (provision again) INITIALIZING
    ACTIVE/INACTIVE/ARCHIVED -> RESTORING -> the status before (ARCHIVED: INACTIVE)

A half-built tenant is never ACTIVE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from console.core.errors import InvalidState
from console.core.tenants.registry import Tenant, TenantStatus

S = TenantStatus


class Action(enum.StrEnum):
    """Operations that depend on a tenant's status."""

    PROVISION = "provision"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    OFFBOARD = "offboard"
    POOL = "pool"
    MIGRATE = "migrate"
    BACKUP = "backup"
    RESTORE = "restore"


@dataclass(frozen=True)
class Rule:
    """The statuses an action starts from, and the status each of its steps leaves."""

    allowed_from: frozenset[TenantStatus]
    leaves: dict[str, TenantStatus] = field(default_factory=dict)


# A provision finds these left by an earlier run (crashed or failed) and finishes the tenant;
# it also starts from no registry row at all (a new key).
RESUMABLE = frozenset({S.INITIALIZING, S.FAILED})
RULES: dict[Action, Rule] = {
    Action.PROVISION: Rule(
        RESUMABLE, {"register": S.INITIALIZING, "activate": S.ACTIVE, "failed": S.FAILED}
    ),
    Action.DEACTIVATE: Rule(
        frozenset({S.ACTIVE, S.DEACTIVATING}),
        {"block": S.DEACTIVATING, "finalize": S.INACTIVE, "rollback": S.ACTIVE},
    ),
    Action.REACTIVATE: Rule(frozenset({S.INACTIVE}), {"grant": S.ACTIVE}),
    Action.OFFBOARD: Rule(
        frozenset({S.ACTIVE, S.INACTIVE, S.OFFBOARDING}),
        {"block": S.OFFBOARDING, "archive": S.ARCHIVED},
    ),
    # Tenants with a PgBouncer alias.
    Action.POOL: Rule(frozenset({S.ACTIVE, S.INACTIVE, S.DEACTIVATING})),
    Action.MIGRATE: Rule(frozenset({S.ACTIVE, S.INACTIVE})),
    Action.BACKUP: Rule(frozenset({S.ACTIVE, S.INACTIVE})),
    # RESTORING: a restore the console did not finish (rerun, --discard, --rollback).
    Action.RESTORE: Rule(
        frozenset({S.ACTIVE, S.INACTIVE, S.ARCHIVED, S.RESTORING}),
        {"plan": S.RESTORING, "finish": S.ACTIVE, "recreated": S.INACTIVE},
    ),
}
LIFECYCLE = (Action.DEACTIVATE, Action.REACTIVATE, Action.OFFBOARD, Action.PROVISION)


def allowed(action: Action, status: TenantStatus) -> bool:
    """Whether ``action`` may start on a tenant in ``status``."""
    return status in RULES[action].allowed_from


def allowed_from(action: Action) -> frozenset[TenantStatus]:
    """The statuses ``action`` may start from."""
    return RULES[action].allowed_from


def leaves(action: Action, step: str) -> TenantStatus:
    """The status ``action``'s ``step`` leaves the tenant in."""
    return RULES[action].leaves[step]


def actions_from(status: TenantStatus) -> tuple[Action, ...]:
    """The lifecycle actions a tenant in ``status`` allows (provision: finish an interrupted
    one), in the order a front end lists them."""
    return tuple(action for action in LIFECYCLE if allowed(action, status))


def check(action: Action, tenant: Tenant) -> None:
    """InvalidState naming the tenant's status and what ``action`` needs, unless allowed."""
    if allowed(action, tenant.status):
        return
    statuses = sorted(s.value for s in allowed_from(action))
    if action is Action.POOL:
        raise InvalidState(
            f"tenant {tenant.key} is {tenant.status}; pool actions need one of "
            f"{', '.join(statuses)}"
        )
    raise InvalidState(
        f"tenant {tenant.key!r} is {tenant.status}; {action} needs " + " or ".join(statuses)
    )
