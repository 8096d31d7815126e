"""Opens the terminal console on a core service: the one place that hands the service to the
Textual app, so the CLI never imports the UI and textual loads only when the console opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.core.service import ConsoleService


async def run_app(service: ConsoleService) -> int:
    """Run the console app on ``service`` (already open and checked) until it exits."""
    from console.ui.app import GoConsoleApp  # textual only when the console opens

    app = GoConsoleApp(service)
    await app.run_async()
    return app.return_code or 0
