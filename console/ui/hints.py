"""How the terminal console words what the core says about an error: a hint as the key or
action that helps (or the command to run where the console has none). The one place the UI
turns core errors into text."""

from __future__ import annotations

from console.core.errors import ConsoleError
from console.core.hints import (
    CheckConnection,
    Force,
    Hint,
    KeysFromFile,
    ListMigrationRuns,
    ListReplaced,
    ListTenants,
    LowerConcurrency,
    RebuildInterface,
    RunInit,
    SyncPools,
)


def error_text(exc: ConsoleError) -> str:
    """The error's message followed by what to do about it, in the console's terms."""
    return exc.message + hint_text(exc.hint)


def hint_text(hint: Hint | None) -> str:
    """A hint as the end of a message ('' for none)."""
    match hint:
        case None | KeysFromFile():
            return ""
        case Force():
            return " — try again with Force ticked to terminate them, or a longer drain timeout"
        case ListTenants():
            return " (the Tenants area, t, lists them)"
        case ListMigrationRuns():
            return " (the Migrations area, m, lists the runs)"
        case RunInit():
            return "; initialise the cluster first (goconsole init)"
        case RebuildInterface():
            return "; run a migration (Migrations area, r), then goconsole init"
        case SyncPools():
            return "; goconsole pool sync adds missing ones"
        case CheckConnection():
            return " (check the cluster's DSN in the configuration and that the server is running)"
        case LowerConcurrency(most=most):
            return f": use a concurrency of 1-{most} or raise pool_max_size"
        case ListReplaced():
            return " (the tenant view lists its replaced schemas)"
