"""Headless command line: the same core service as the TUI, for runbooks and cron.

Exit codes: 0 success, 1 the operation failed (including a cluster that cannot be reached),
2 bad usage or input (including a cluster where ``init`` never ran), 141 stdout closed early
(``| head``). Errors are one line on stderr (``--debug`` adds the traceback); progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import os
import select
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence

from console.cli.command import Command, Commands
from console.cli.demo import run_demo_command
from console.cli.hints import error_text
from console.cli.parser import PROG, build_parser
from console.cli.validate import validate
from console.config import Settings, load_settings
from console.core.errors import ConsoleError, InvalidInput
from console.core.service import ConsoleService

UiLauncher = Callable[[ConsoleService], Awaitable[int]]
# The modules of each command's area (their COMMANDS), imported only when that command runs.
AREAS: dict[str, tuple[str, ...]] = {
    "init": ("init",),
    "tenants": ("tenants",),
    "audit": ("audit",),
    "check-privileges": ("privileges",),
    "migrate": ("migrate",),
    "pool": ("pools",),
    "backups": ("backups", "backup_maintenance", "restore"),
    "jobs": ("jobs",),
    "scheduler": ("jobs",),
    "stats": ("stats",),
    "health": ("health",),
}


class StartupFailed(InvalidInput):
    """The console cannot start without a terminal: exit 2, no traceback."""


def main(argv: Sequence[str] | None, launch_ui: UiLauncher) -> int:
    """Run the CLI (``console.entry.main`` calls it, with the launcher that opens the terminal
    console); returns the exit code."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            args.command = "tui"
        settings = load_settings(args.config)
        code = asyncio.run(dispatch(args, settings, launch_ui))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except BrokenPipeError as exc:
        return _broken_pipe(exc, debug)
    except ConsoleError as exc:
        _fail(error_text(exc), debug)
        return exc.exit_code
    except KeyboardInterrupt:
        _fail("interrupted", debug)
        return 130
    except Exception as exc:
        return _unexpected(exc, debug)


def _unexpected(exc: Exception, debug: bool) -> int:
    hint = "" if debug else " (rerun with --debug)"
    _fail(f"unexpected error: {type(exc).__name__}: {exc}{hint}", debug)
    return 1


def _broken_pipe(exc: BrokenPipeError, debug: bool) -> int:
    """The reader of stdout or stderr went away (``| head``): stop quietly with the status of
    a process killed by SIGPIPE, after pointing the closed stream at devnull so the final
    flush cannot fail again (Python's documented recipe). Any other broken pipe is an error."""
    closed = _closed_pipes()
    if not closed:
        return _unexpected(exc, debug)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in closed:
        os.dup2(devnull, fd)
    return 128 + signal.SIGPIPE


def _closed_pipes() -> list[int]:
    """stdout/stderr descriptors that are pipes without a reader (they poll as an error)."""
    poller = select.poll()
    for stream in (sys.stdout, sys.stderr):
        poller.register(stream.fileno(), select.POLLOUT)
    return [fd for fd, events in poller.poll(0) if events & select.POLLERR]


def _fail(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)
    print(f"{PROG}: error: {message}", file=sys.stderr)


async def dispatch(args: argparse.Namespace, settings: Settings, launch_ui: UiLauncher) -> int:
    """Run one parsed command (``launch_ui`` runs the terminal console on a service)."""
    open_ui = functools.partial(open_console, launch_ui=launch_ui)
    if args.command == "demo":
        return await run_demo_command(args, settings, open_ui)
    validate(args, settings)
    service = ConsoleService(
        settings,
        cluster=args.cluster,
        dsn=args.dsn,
        read_only=args.read_only or None,
        pgbouncer_dsn=args.pgbouncer_dsn,
    )
    if args.command == "tui":
        return await open_ui(service)
    command = command_for(args)
    async with service:
        await _connected(service, initialised=args.command != "init")
        await command(service, args)
    return 0


def command_for(args: argparse.Namespace) -> Command:
    """The function that runs the parsed command, from its area's module."""
    wanted = (args.command, getattr(args, "action", None))
    for module in AREAS[args.command]:
        commands: Commands = importlib.import_module(f"console.cli.{module}").COMMANDS
        if wanted in commands:
            return commands[wanted]
    raise LookupError(f"no function runs {' '.join(filter(None, wanted))}")


async def _connected(service: ConsoleService, initialised: bool) -> None:
    """After connecting: say once which server the defaults chose (no DSN given anywhere),
    and, when ``initialised``, refuse a cluster where ``init`` never ran (exit 2)."""
    server = await service.default_server()
    if server is not None:
        print(
            f"{PROG}: no DSN given (--dsn, $GOCONSOLE_DSN, [clusters.{service.cluster_name}] "
            f"dsn): PG* variables and defaults chose {server}",
            file=sys.stderr,
        )
    if initialised:
        await service.require_initialised()


async def open_console(service: ConsoleService, launch_ui: UiLauncher) -> int:
    """Open the terminal console on ``service`` with ``launch_ui``. A cluster that cannot be
    reached (exit 1) or was never initialised (exit 2), or no terminal (exit 2), is one line on
    stderr."""
    await service.open()
    try:
        await _connected(service, initialised=True)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise StartupFailed(
                "the console needs a terminal; without one, use a command such as "
                "'goconsole tenants list' (see goconsole --help)"
            )
        return await launch_ui(service)
    finally:
        await service.close()
