"""``goconsole demo``: a local PostgreSQL (and PgBouncer) with demo tenants, then the console."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from console.cli.render import print_event
from console.config import Settings
from console.core.service import ConsoleService


async def run_demo_command(
    args: argparse.Namespace,
    settings: Settings,
    open_ui: Callable[[ConsoleService], Awaitable[int]],
) -> int:
    """Start the demo cluster and open the console on it (``--no-ui``: serve until Ctrl-C)."""
    from console.devenv.demo import run_demo  # only this command needs the dev servers

    ui = None if args.no_ui else open_ui
    return await run_demo(settings, args.tenants, args.data_dir, ui, print_event)
