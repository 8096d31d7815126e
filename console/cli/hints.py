"""How the CLI words what the core says about an error: a field as its flag, a hint as the
command or flag that helps. The one place the CLI turns core errors into text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.core.errors import ConsoleError
from console.core.hints import (
    CheckConnection,
    Field,
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

if TYPE_CHECKING:
    from console.core.security.privileges import Finding

FLAGS: dict[Field, str] = {
    Field.CONCURRENCY: "--concurrency",
    Field.TIMEOUT: "--timeout",
    Field.TARGET: "--to",
    Field.KEEP_REPLACED: "--keep-replaced",
}


def error_text(exc: ConsoleError) -> str:
    """The error's one line: its field named by the flag, its hint as a command or flag."""
    text = exc.message
    if exc.field is not None:
        text = FLAGS[exc.field] + text.removeprefix(exc.field.value)
    return text + hint_text(exc.hint)


def hint_text(hint: Hint | None) -> str:
    """A hint as the end of a message ('' for none)."""
    match hint:
        case None:
            return ""
        case Force():
            return " — rerun with --force to terminate them or with a longer --timeout"
        case ListTenants():
            return " (see: goconsole tenants list)"
        case ListMigrationRuns():
            return " (see: goconsole migrate runs)"
        case RunInit():
            return f"; run '{command(hint)}' with the same connection options first"
        case RebuildInterface():
            return f"; fix: {command(hint)}"
        case SyncPools():
            return "; 'goconsole pool sync' adds missing ones"
        case CheckConnection():
            return (
                " (check --dsn / $GOCONSOLE_DSN / the [clusters] DSN, and that the server is "
                "running)"
            )
        case LowerConcurrency(most=most):
            return f": use --concurrency 1-{most} or raise pool_max_size"
        case KeysFromFile():
            return " (or --from-file FILE)"
        case ListReplaced():
            return " (goconsole backups replaced lists them)"


def command(hint: RunInit | RebuildInterface) -> str:
    """The command line that does what ``hint`` asks."""
    if isinstance(hint, RebuildInterface):
        return "goconsole migrate all (recreates the control schema's head), then init"
    return "goconsole init"


def fix_text(finding: Finding) -> str:
    """A privilege finding's fix: its SQL, the command that applies it, or both."""
    if finding.hint is None:
        return finding.fix
    if finding.fix:
        return f"{finding.fix} ({command(finding.hint)} does this)"
    return command(finding.hint)
