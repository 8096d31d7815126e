"""Headless command line: the same core service as the TUI, for runbooks and cron.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or input. Errors are one line on
stderr (``--debug`` adds the traceback); progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from console.config import Settings, load_settings
from console.core.errors import ConnectionFailed, ConsoleError, InvalidInput
from console.core.events import Phase, StepEvent
from console.core.identifiers import validate_tenant_key
from console.core.registry import parse_status
from console.core.service import ConsoleService

PROG = "goconsole"
_MARKS = {Phase.STARTED: "…", Phase.DONE: "✓", Phase.FAILED: "✗", Phase.INFO: "·"}


class UsageError(InvalidInput):
    """argparse usage problems, reported like every other error."""


class StartupFailed(InvalidInput):
    """The console could not start (e.g. the cluster is unreachable): exit 2, no traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog=PROG, description="GO-Commerce tenant operations console.")
    parser.add_argument("--config", help="config file (default: search order in README)")
    parser.add_argument("--dsn", help="PostgreSQL DSN for this run (overrides config)")
    parser.add_argument("--cluster", help="cluster name from [clusters] (default: configured)")
    parser.add_argument("--read-only", action="store_true", help="refuse every mutation")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("tui", help="open the terminal console (the default without a command)")
    sub.add_parser("init", help="create/upgrade the control schema, app role and template")

    tenants = sub.add_parser("tenants", help="tenant lifecycle").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = tenants.add_parser("provision", help="create a tenant (or finish an interrupted one)")
    p.add_argument("key")
    p.add_argument("--name", help="display name (default: the key)")
    p.add_argument("--alembic", action="store_true", help="build via alembic, not the template")
    p = tenants.add_parser("list", help="list tenants")
    p.add_argument("--status", help="only tenants in this status")
    p.add_argument("--json", action="store_true")
    p = tenants.add_parser("show", help="one tenant: registry, tables, RLS, backups, audit")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    for action, text in (
        ("deactivate", "final backup, block access, drain, INACTIVE"),
        ("offboard", "verified backup, export audit, drop schema, ARCHIVED"),
    ):
        p = tenants.add_parser(action, help=text)
        p.add_argument("key")
        p.add_argument("--timeout", type=float, help="seconds to wait for lock holders")
        p.add_argument("--force", action="store_true", help="terminate lock holders at timeout")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--json", action="store_true")
    p = tenants.add_parser("reactivate", help="grant access again, ACTIVE")
    p.add_argument("key")

    p = sub.add_parser("audit", help="the audit log, newest first")
    p.add_argument("key", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="embedded PostgreSQL with demo tenants")
    p.add_argument("--tenants", type=int, default=25, help="number of demo tenants")
    p.add_argument("--data-dir", help="persistent data dir (default: user data dir)")
    p.add_argument("--no-ui", action="store_true", help="print the DSN and wait for Ctrl-C")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``goconsole`` and ``python -m console``."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            args.command = "tui"
        settings = load_settings(args.config)
        return asyncio.run(dispatch(args, settings))
    except ConsoleError as exc:
        _fail(f"{exc.message}", debug)
        return exc.exit_code
    except KeyboardInterrupt:
        _fail("interrupted", debug)
        return 130
    except Exception as exc:
        _fail(f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug)", debug)
        return 1


def _fail(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)
    print(f"{PROG}: error: {message}", file=sys.stderr)


def print_event(event: StepEvent, out: TextIO = sys.stderr) -> None:
    """Render one progress event as a line."""
    who = f"{event.operation} {event.tenant}" if event.tenant else event.operation
    took = f" ({event.duration_ms:.0f} ms)" if event.duration_ms is not None else ""
    text = event.message
    if event.phase is Phase.DONE and event.details.get("method"):
        text += f" [{event.details['method']}]"
    print(f"[{who}] {_MARKS[event.phase]} {event.step}: {text}{took}", file=out, flush=True)


def _emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


def _confirm(action: str, key: str, assume_yes: bool, what: str) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"{action} {key} is destructive: pass --yes when not interactive")
    print(f"{action} {key}: {what}", file=sys.stderr)
    answer = input(f"Type the tenant key ({key}) to confirm, anything else aborts: ")
    if answer.strip() != key:
        raise InvalidInput(f"confirmation did not match {key!r}; nothing was done")


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run one parsed command."""
    if args.command == "demo":
        from console.core.demo import run_demo

        ui = None if args.no_ui else run_tui
        return await run_demo(settings, args.tenants, args.data_dir, ui, print_event)
    _validate(args)
    service = ConsoleService(
        settings, cluster=args.cluster, dsn=args.dsn, read_only=args.read_only or None
    )
    if args.command == "tui":
        return await run_tui(service)
    command = _COMMANDS[(args.command, getattr(args, "action", None))]
    async with service:
        await command(service, args)
    return 0


async def run_tui(service: ConsoleService) -> int:
    """Open the terminal UI on ``service``; a cluster that cannot be reached exits 2."""
    try:
        await service.open()
    except ConnectionFailed as exc:
        raise StartupFailed(exc.message) from None
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        await service.close()
        raise StartupFailed(
            "the console needs a terminal; without one, use a command such as "
            "'goconsole tenants list' (see goconsole --help)"
        )
    from console.ui.app import GoConsoleApp

    try:
        app = GoConsoleApp(service)
        await app.run_async()
    finally:
        await service.close()
    return app.return_code or 0


def _validate(args: argparse.Namespace) -> None:
    """Check arguments before connecting, so bad input never reaches the database."""
    if getattr(args, "key", None) is not None:
        validate_tenant_key(args.key)
    if getattr(args, "status", None):
        parse_status(args.status)
    if args.command == "audit" and not 1 <= args.limit <= 100_000:
        raise InvalidInput(f"--limit must be between 1 and 100000, got {args.limit}")
    destructive = {
        "deactivate": "backs up, then revokes application access and drains",
        "offboard": "backs up, then DROPS the schema for good",
    }
    if args.command == "tenants" and args.action in destructive:
        if args.timeout is not None and not 0 <= args.timeout <= 86400:
            raise InvalidInput(f"--timeout must be between 0 and 86400, got {args.timeout:g}")
        if args.read_only:
            return  # refused later with the read-only message, without prompting
        _confirm(args.action, args.key, args.yes, destructive[args.action])


async def _init(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.init(print_event)
    print(
        f"control schema at {report['control_revision']}, role {service.app_role} "
        f"{report['app_role']}, template at {report['template_revision']}"
    )


async def _provision(service: ConsoleService, args: argparse.Namespace) -> None:
    tenant = await service.provision(args.key, args.name, print_event, not args.alembic)
    print(f"tenant {tenant.key} is {tenant.status} (schema {tenant.schema_name}, id {tenant.id})")


async def _list(service: ConsoleService, args: argparse.Namespace) -> None:
    tenants = await service.tenants(parse_status(args.status) if args.status else None)
    if args.json:
        _emit_json([t.as_json() for t in tenants])
        return
    rows = [
        (t.key, t.status.value, t.display_name, t.created_at.strftime("%Y-%m-%d %H:%M"))
        for t in tenants
    ]
    _print_table(("KEY", "STATUS", "NAME", "CREATED"), rows)
    print(f"{len(tenants)} tenant(s)")


async def _show(service: ConsoleService, args: argparse.Namespace) -> None:
    detail = await service.tenant_detail(args.key)
    if args.json:
        _emit_json(detail)
        return
    t = detail["tenant"]
    for label in ("key", "display_name", "status", "schema_name", "id", "cluster", "created_at"):
        print(f"{label:>13}: {t[label]}")
    print(f"{'revision':>13}: {detail['revision'] or '(no schema)'}")
    print(f"{'config':>13}: {json.dumps(t['config'])}")
    print()
    _print_table(
        ("TABLE", "EST. ROWS", "SIZE", "RLS", "FORCED", "POLICIES"),
        [
            (
                r["table"],
                str(r["estimated_rows"]),
                _size(r["bytes"]),
                "yes" if r["rls_enabled"] else "NO",
                "yes" if r["rls_forced"] else "NO",
                str(r["policies"]),
            )
            for r in detail["tables"]
        ],
    )
    if detail["backups"]:
        print()
        _print_table(
            ("BACKUP", "STATUS", "STARTED", "SIZE", "VERIFIED"),
            [
                (
                    b["kind"],
                    b["status"],
                    b["started_at"][:19],
                    _size(b["bytes"] or 0),
                    b["verify_result"] or "-",
                )
                for b in detail["backups"]
            ],
        )
    print()
    _print_audit(detail["audit"])


async def _deactivate(service: ConsoleService, args: argparse.Namespace) -> None:
    tenant = await service.deactivate(args.key, args.timeout, args.force, print_event)
    if args.json:
        _emit_json(tenant.as_json())
    else:
        print(f"tenant {tenant.key} is {tenant.status}")


async def _reactivate(service: ConsoleService, args: argparse.Namespace) -> None:
    tenant = await service.reactivate(args.key, print_event)
    print(f"tenant {tenant.key} is {tenant.status}")


async def _offboard(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.offboard(args.key, args.timeout, args.force, print_event)
    if args.json:
        _emit_json(report.as_json())
    else:
        print(report.as_text())


async def _audit(service: ConsoleService, args: argparse.Namespace) -> None:
    entries = [e.as_json() for e in await service.audit(args.key, args.limit)]
    if args.json:
        _emit_json(entries)
    else:
        _print_audit(entries)


def _print_audit(entries: list[dict[str, Any]]) -> None:
    _print_table(
        ("WHEN (UTC)", "TENANT", "ACTION", "ACTOR", "FROM"),
        [
            (
                e["action_timestamp"][:19].replace("T", " "),
                e["tenant"] or "-",
                e["action_type"],
                f"{e['actor']}@{e['actor_host']}",
                e["actor_address"],
            )
            for e in entries
        ],
    )


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


_Command = Callable[[ConsoleService, argparse.Namespace], Awaitable[None]]
_COMMANDS: dict[tuple[str, str | None], _Command] = {
    ("init", None): _init,
    ("tenants", "provision"): _provision,
    ("tenants", "list"): _list,
    ("tenants", "show"): _show,
    ("tenants", "deactivate"): _deactivate,
    ("tenants", "reactivate"): _reactivate,
    ("tenants", "offboard"): _offboard,
    ("audit", None): _audit,
}
