"""The tenant state machine (console/core/states.py): what each status allows, what each step
leaves, and the refusals it words."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from console.core import states
from console.core.errors import InvalidState
from console.core.states import Action
from console.core.tenants.registry import Tenant, TenantStatus
from console.ui.screens.tenant_detail import ACTIONS_BY_STATUS

S = TenantStatus


def tenant(status: TenantStatus) -> Tenant:
    now = datetime.now(UTC)
    return Tenant(uuid.uuid4(), "acme", "tenant_acme", "Acme", status, "local", now, now, None)


def test_the_lifecycle_actions_of_each_status_are_those_the_tenant_screen_offers() -> None:
    ui_names = {"provision": "resume_provision"}
    for status in TenantStatus:
        offered = tuple(ui_names.get(a.value, a.value) for a in states.actions_from(status))
        assert offered == ACTIONS_BY_STATUS[status], status


@pytest.mark.parametrize(
    ("action", "step", "status"),
    [
        (Action.PROVISION, "register", S.INITIALIZING),
        (Action.PROVISION, "activate", S.ACTIVE),
        (Action.DEACTIVATE, "block", S.DEACTIVATING),
        (Action.DEACTIVATE, "finalize", S.INACTIVE),
        (Action.REACTIVATE, "grant", S.ACTIVE),
        (Action.OFFBOARD, "block", S.OFFBOARDING),
        (Action.OFFBOARD, "archive", S.ARCHIVED),
    ],
)
def test_each_step_leaves_its_status(action: Action, step: str, status: TenantStatus) -> None:
    assert states.leaves(action, step) is status


def test_an_archived_tenant_allows_only_a_restore() -> None:
    """An offboarded tenant's schema is gone: only a restore from its final backup (which
    leaves it INACTIVE) brings it back."""
    assert [a for a in Action if states.allowed(a, S.ARCHIVED)] == [Action.RESTORE]


def test_a_refusal_names_the_status_and_what_the_action_needs() -> None:
    with pytest.raises(
        InvalidState, match=r"^tenant 'acme' is ARCHIVED; reactivate needs INACTIVE$"
    ):
        states.check(Action.REACTIVATE, tenant(S.ARCHIVED))
    with pytest.raises(
        InvalidState,
        match=r"^tenant acme is FAILED; pool actions need one of ACTIVE, DEACTIVATING, INACTIVE$",
    ):
        states.check(Action.POOL, tenant(S.FAILED))
    states.check(Action.OFFBOARD, tenant(S.INACTIVE))
