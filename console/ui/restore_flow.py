"""Restoring a tenant from the console: the restore form, the typed confirmation with the
pool's drain timeout and force, then the restore (or a rollback) as a tracked operation whose
six steps and report show on the tenant's detail view."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from console.ui.restore_view import report_lines, restore_steps, rollback_steps
from console.ui.screens.prompt import ConfirmDrainScreen
from console.ui.screens.restore import RestoreChoice, RestoreScreen

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


def request_restore(app: GoConsoleApp, key: str) -> None:
    """The restore form of ``key``, then the typed confirmation (with the pool's drain
    timeout and force), then the restore, its six steps and its report on the detail
    view."""
    if app.refuse_read_only("restore") or app.still_running(key):
        return

    def chosen(choice: RestoreChoice | None) -> None:
        if choice is None:
            app.notify(f"restore {key} cancelled: nothing was done")
            return
        dialog = ConfirmDrainScreen(
            "restore",
            key,
            partial(restore_steps, choice.plan),
            app.settings.lifecycle.drain_timeout,
        )

        def confirmed(ok: bool | None) -> None:
            if not ok:
                app.notify(f"restore {key} cancelled: nothing was done")
                return
            drain = dialog.choice
            app.operations.tenant_operation(
                "restore",
                key,
                lambda sink: app.service.backups.restore(
                    key,
                    to=choice.to,
                    backup_id=choice.backup_id,
                    timeout=drain.timeout,
                    force=drain.force,
                    sink=sink,
                ),
                report_lines,
            )

        app.push_screen(dialog, confirmed)

    app.push_screen(RestoreScreen(key), chosen)


def request_rollback(app: GoConsoleApp, key: str) -> None:
    """Swap ``key``'s replaced schema back, after the typed confirmation."""
    if app.refuse_read_only("restore rollback") or app.still_running(key):
        return
    dialog = ConfirmDrainScreen(
        "roll back",
        key,
        rollback_steps,
        app.settings.lifecycle.drain_timeout,
    )

    def confirmed(ok: bool | None) -> None:
        if not ok:
            app.notify(f"roll back {key} cancelled: nothing was done")
            return
        drain = dialog.choice
        app.operations.tenant_operation(
            "rollback",
            key,
            lambda sink: app.service.backups.rollback(
                key, timeout=drain.timeout, force=drain.force, sink=sink
            ),
            report_lines,
        )

    app.push_screen(dialog, confirmed)
