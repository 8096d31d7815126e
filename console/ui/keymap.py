"""The console's keys: the areas (modes) a key opens and the screen each shows, every binding id
the ``[keys]`` map may rebind, and the mutation behind a key (what read-only mode refuses)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.actions import parse as parse_action
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.ui.screens.audit import AuditScreen
from console.ui.screens.backup_history import BackupHistoryScreen
from console.ui.screens.backups import BackupsScreen
from console.ui.screens.base import RowTable
from console.ui.screens.health import HealthScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.jobs import JobsScreen, RunDetailScreen
from console.ui.screens.migrations import MigrationsScreen
from console.ui.screens.pool_forms import PoolSizeScreen
from console.ui.screens.pools import PoolsScreen
from console.ui.screens.prompt import ConfirmKeyScreen
from console.ui.screens.provision import ProvisionScreen
from console.ui.screens.restore import RestoreScreen
from console.ui.screens.tenant_detail import TenantDetailScreen
from console.ui.screens.tenants import TenantsScreen

# area -> the key that opens it
AREAS: dict[str, str] = {
    "tenants": "t",
    "migrations": "m",
    "pools": "p",
    "backups": "b",
    "health": "h",
    "jobs": "j",
    "audit": "a",
}
MUTATIONS = {
    "provision",
    "tenant",
    "start_run",
    "retry_failed",
    "pool",
    "backup",
    "restore",
    "run_job",
}
MUTATION_NAMES = {"start_run": "migrate", "retry_failed": "migrate retry", "run_job": "jobs run"}
BACKUP_NAMES = {
    "verify": "backup verify",
    "restore_test": "backup restore test",
    "drill": "backup drill",
}
# Every screen whose bindings the [keys] map may rebind.
SCREENS: tuple[type[Screen[Any]], ...] = (
    TenantsScreen,
    TenantDetailScreen,
    AuditScreen,
    MigrationsScreen,
    PoolsScreen,
    PoolSizeScreen,
    BackupsScreen,
    BackupHistoryScreen,
    HealthScreen,
    JobsScreen,
    RunDetailScreen,
    ProvisionScreen,
    ConfirmKeyScreen,
    RestoreScreen,
    HelpScreen,
)


def area_screen(area: str) -> Screen[None]:
    """The screen of ``area`` (one of AREAS)."""
    if area == "tenants":
        return TenantsScreen()
    if area == "audit":
        return AuditScreen()
    if area == "migrations":
        return MigrationsScreen()
    if area == "pools":
        return PoolsScreen()
    if area == "backups":
        return BackupsScreen()
    if area == "health":
        return HealthScreen()
    if area == "jobs":
        return JobsScreen()
    raise ValueError(f"no area {area!r}; areas: {', '.join(AREAS)}")


def binding_ids(app_bindings: Iterable[BindingType]) -> set[str]:
    """Every binding id: the app's (``app_bindings``), the tables' and every screen's."""
    found = [b for b in [*app_bindings, *RowTable.BINDINGS] if isinstance(b, Binding)]
    for screen in SCREENS:
        found += [b for b in screen.BINDINGS if isinstance(b, Binding)]
    return {b.id for b in found if b.id}


def mutation_behind(screen: Screen[Any], key: str) -> str | None:
    """The mutation bound to ``key`` on ``screen``, if any (hidden or not), as read-only mode
    names it when refusing."""
    # Textual's own lookup order: the focused widget, its screen, then the app.
    for _node, bindings in screen._modal_binding_chain:
        for binding in bindings.key_to_bindings.get(key, ()):
            _, name, parameters = parse_action(binding.action)
            if name in MUTATIONS:
                if name == "backup":
                    return BACKUP_NAMES.get(str(parameters[0]), name)
                if name == "restore":
                    return "restore" if parameters[0] == "restore" else "restore rollback"
                if name in {"tenant", "pool"}:
                    verb = str(parameters[0]).replace("_", " ")
                    return verb if name == "tenant" else f"pool {verb}"
                return MUTATION_NAMES.get(name, name)
    return None
