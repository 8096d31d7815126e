"""Headless command line: the same core service as the TUI, for runbooks and cron.

Exit codes: 0 success, 1 the operation failed (including a cluster that cannot be reached),
2 bad usage or input (including a cluster where ``init`` never ran), 141 stdout closed early
(``| head``). Errors are one line on stderr (``--debug`` adds the traceback); progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from console.config import Settings, load_settings
from console.core.errors import (
    ConsoleError,
    InvalidInput,
    OperationFailed,
    PgBouncerUnavailable,
)
from console.core.events import Phase, StepEvent
from console.core.identifiers import schema_for, validate_tenant_key
from console.core.migrations.runner import MigrationPlan, display_sql
from console.core.pools.monitor import PoolSnapshot
from console.core.service import ConsoleService
from console.core.tenants.bulk_report import check_concurrency, check_request
from console.core.tenants.lifecycle import check_drain_timeout
from console.core.tenants.registry import parse_status
from console.entry import version_text

PROG = "goconsole"
_MARKS = {Phase.STARTED: "…", Phase.DONE: "✓", Phase.FAILED: "✗", Phase.INFO: "·"}


class UsageError(InvalidInput):
    """argparse usage problems, reported like every other error."""


class StartupFailed(InvalidInput):
    """The console cannot start without a terminal: exit 2, no traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog=PROG, description="GO-Commerce tenant operations console.")
    parser.add_argument("--config", help="config file (default: search order in README)")
    parser.add_argument("--dsn", help="PostgreSQL DSN for this run (overrides config)")
    parser.add_argument("--cluster", help="cluster name from [clusters] (default: configured)")
    parser.add_argument(
        "--pgbouncer-dsn", help="PgBouncer admin console DSN for this run (overrides config)"
    )
    parser.add_argument("--read-only", action="store_true", help="refuse every mutation")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("tui", help="open the terminal console (the default without a command)")
    sub.add_parser("init", help="create/upgrade the control schema, app role and template")

    tenants = sub.add_parser("tenants", help="tenant lifecycle").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = tenants.add_parser(
        "provision", help="create tenants (or finish interrupted ones); several at once in batches"
    )
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument(
        "--from-file", metavar="FILE", help="keys, one per line (# comments; '-' reads stdin)"
    )
    p.add_argument("--name", help="display name (default: the key; only with one KEY)")
    p.add_argument(
        "--concurrency",
        type=int,
        help="tenants built at once (default: lifecycle.provision_concurrency)",
    )
    p.add_argument("--alembic", action="store_true", help="build via alembic, not the template")
    p.add_argument("--json", action="store_true")
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

    migrate = sub.add_parser("migrate", help="tenant schema migrations").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = migrate.add_parser("status", help="tenants per revision: at head, behind or unknown")
    p.add_argument("--json", action="store_true")
    p = migrate.add_parser("runs", help="recent migration runs")
    p.add_argument("--json", action="store_true")
    for action, text in (
        ("plan", "who moves from which revision to which, and the SQL (changes nothing)"),
        ("all", "migrate every tenant (ACTIVE and INACTIVE; ARCHIVED are skipped)"),
    ):
        p = migrate.add_parser(action, help=text)
        p.add_argument("--to", help="target revision (default: head)")
        scope = p.add_mutually_exclusive_group()
        scope.add_argument("--tenants", help="comma-separated tenant keys")
        scope.add_argument("--status", help="only tenants in this status")
        p.add_argument("--json", action="store_true")
        if action == "all":
            p.add_argument("--concurrency", type=int, default=2, help="tenants at once (1-32)")
            p.add_argument("--lock-timeout", type=float, help="seconds per lock wait")
            p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p = migrate.add_parser("retry", help="retry the failed/busy tenants of a run")
    p.add_argument("run", nargs="?", help="run id (default: the latest run)")
    p.add_argument("--concurrency", type=int, default=2, help="tenants at once (1-32)")
    p.add_argument("--lock-timeout", type=float, help="seconds per lock wait")
    p.add_argument("--json", action="store_true")

    _add_pool_commands(sub)

    p = sub.add_parser("audit", help="the audit log, newest first")
    p.add_argument("key", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "check-privileges",
        help="what the application role holds outside its tenant schemas; exit 1 on findings",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="embedded PostgreSQL with demo tenants")
    p.add_argument("--tenants", type=int, default=25, help="number of demo tenants")
    p.add_argument("--data-dir", help="persistent data dir (default: user data dir)")
    p.add_argument("--no-ui", action="store_true", help="print the DSN and wait for Ctrl-C")
    return parser


def _add_pool_commands(sub: Any) -> None:
    pool = sub.add_parser("pool", help="PgBouncer pools").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = pool.add_parser("show", help="every pool: clients, servers, waits, rates, limits")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=float, default=None, help="seconds between samples")
    p.add_argument("--count", type=int, help="with --watch: stop after this many samples")
    p = pool.add_parser("clients", help="client connections of one tenant's pool")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p = pool.add_parser("set-size", help="a tenant's pool size (and reserve); RELOAD")
    p.add_argument("key")
    p.add_argument("size")
    p.add_argument("--reserve", help="reserve pool (default: [pgbouncer] default_reserve_pool)")
    p = pool.add_parser("set-default", help="SET default_pool_size (live, global)")
    p.add_argument("size")
    p = pool.add_parser("pause", help="wait for in-flight transactions, then hold new ones")
    p.add_argument("key")
    p.add_argument("--timeout", type=float, help="seconds (default: [pgbouncer] pause_timeout)")
    for action, text in (
        ("resume", "undo pause"),
        ("disable", "refuse new clients"),
        ("enable", "undo disable"),
        ("reconnect", "recycle server connections"),
    ):
        p = pool.add_parser(action, help=text)
        p.add_argument("key")
    p = pool.add_parser("kill", help="drop every client and server connection at once")
    p.add_argument("key")
    p.add_argument("--keep-paused", action="store_true", help="leave the pool paused after")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = pool.add_parser(
        "sync", help="repair every alias (target, sizes) for the ACTIVE/INACTIVE tenants; RELOAD"
    )
    p.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI (``console.entry.main`` calls it); returns the exit code."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            args.command = "tui"
        settings = load_settings(args.config)
        code = asyncio.run(dispatch(args, settings))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except BrokenPipeError as exc:
        return _broken_pipe(exc, debug)
    except ConsoleError as exc:
        _fail(f"{exc.message}", debug)
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


def print_event(event: StepEvent, out: TextIO = sys.stderr) -> None:
    """Render one progress event as a line."""
    print(format_event(event), file=out, flush=True)


def format_event(event: StepEvent) -> str:
    """One progress event as a line of text."""
    who = f"{event.operation} {event.tenant}" if event.tenant else event.operation
    took = f" ({event.duration_ms:.0f} ms)" if event.duration_ms is not None else ""
    text = event.message
    if event.phase is Phase.DONE and event.details.get("method"):
        text += f" [{event.details['method']}]"
    return f"[{who}] {_MARKS[event.phase]} {event.step}: {text}{took}"


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
        from console.devenv.demo import run_demo

        ui = None if args.no_ui else run_tui
        return await run_demo(settings, args.tenants, args.data_dir, ui, print_event)
    _validate(args, settings)
    service = ConsoleService(
        settings,
        cluster=args.cluster,
        dsn=args.dsn,
        read_only=args.read_only or None,
        pgbouncer_dsn=args.pgbouncer_dsn,
    )
    if args.command == "tui":
        return await run_tui(service)
    command = _COMMANDS[(args.command, getattr(args, "action", None))]
    async with service:
        await _connected(service, initialised=args.command != "init")
        await command(service, args)
    return 0


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


async def run_tui(service: ConsoleService) -> int:
    """Open the terminal UI on ``service``. A cluster that cannot be reached (exit 1) or was
    never initialised (exit 2), or no terminal (exit 2), is one line on stderr."""
    await service.open()
    try:
        await _connected(service, initialised=True)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise StartupFailed(
                "the console needs a terminal; without one, use a command such as "
                "'goconsole tenants list' (see goconsole --help)"
            )
        from console.ui.app import GoConsoleApp

        app = GoConsoleApp(service)
        await app.run_async()
    finally:
        await service.close()
    return app.return_code or 0


def _validate(args: argparse.Namespace, settings: Settings) -> None:
    """Check arguments before connecting, so bad input never reaches the database."""
    if args.command == "tenants" and args.action == "provision":
        _validate_provision(args, settings)
        return
    if getattr(args, "key", None) is not None:
        validate_tenant_key(args.key)
    if getattr(args, "status", None):
        parse_status(args.status)
    if getattr(args, "tenants", None) is not None and args.command == "migrate":
        for key in args.tenants.split(","):
            validate_tenant_key(key.strip())
    if getattr(args, "concurrency", None) is not None and not 1 <= args.concurrency <= 32:
        raise InvalidInput(f"--concurrency must be between 1 and 32, got {args.concurrency}")
    lock_timeout = getattr(args, "lock_timeout", None)
    if lock_timeout is not None and not 0 < lock_timeout <= 3600:
        raise InvalidInput(f"--lock-timeout must be between 0 and 3600 seconds, got {lock_timeout}")
    if args.command == "pool":
        _validate_pool(args)
        return
    if args.command == "audit" and not 1 <= args.limit <= 100_000:
        raise InvalidInput(f"--limit must be between 1 and 100000, got {args.limit}")
    destructive = {
        "deactivate": "backs up, then revokes application access and drains",
        "offboard": "backs up, then DROPS the schema for good",
    }
    if args.command == "tenants" and args.action in destructive:
        if args.timeout is not None:
            check_drain_timeout(args.timeout)
        if args.read_only:
            return  # refused later with the read-only message, without prompting
        _confirm(args.action, args.key, args.yes, destructive[args.action])


def _validate_provision(args: argparse.Namespace, settings: Settings) -> None:
    """Gather the keys (arguments, then ``--from-file``) into ``args.keys`` and check them all;
    ``args.bulk`` says whether the bulk path runs (several keys, or a file)."""
    if args.from_file is not None:
        args.keys = [*args.keys, *_read_keys(args.from_file)]
    args.bulk = args.from_file is not None or len(args.keys) > 1
    if args.name is not None and args.bulk:
        raise InvalidInput(
            f"--name names one tenant: give exactly one KEY with it (got {len(args.keys)}); "
            "bulk provisioning names each tenant after its key"
        )
    check_request(args.keys)
    if args.concurrency is not None:
        check_concurrency(args.concurrency, settings.cluster(args.cluster).pool_max_size)


def _read_keys(path: str) -> list[str]:
    """Tenant keys from a file (``-``: stdin), one per line; ``#`` starts a comment, blank
    lines are skipped; an invalid key is reported with its file and line."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read {path}: {reason}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.split("#", 1)[0].strip()
        if not key:
            continue
        try:
            keys.append(validate_tenant_key(key))
        except InvalidInput as exc:
            raise InvalidInput(
                f"{'stdin' if path == '-' else path}:{number}: {exc.message}"
            ) from None
    return keys


def _validate_pool(args: argparse.Namespace) -> None:
    if args.action == "show":
        if args.interval is not None and not 0.1 <= args.interval <= 3600:
            raise InvalidInput(
                f"--interval must be between 0.1 and 3600 seconds, got {args.interval:g}"
            )
        if args.count is not None and args.count < 1:
            raise InvalidInput(f"--count must be 1 or more, got {args.count}")
    if args.action == "pause" and args.timeout is not None and not 0 < args.timeout <= 3600:
        raise InvalidInput(f"--timeout must be between 0 and 3600 seconds, got {args.timeout:g}")
    if args.action == "kill" and not args.read_only:
        _confirm(args.action, args.key, args.yes, "drops every client and server connection now")


async def _init(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.init(print_event)
    print(
        f"control schema at {report['control_revision']}, role {service.app_role} "
        f"{report['app_role']}, template at {report['template_revision']}"
    )
    changes = report["privilege_changes"]
    for change in changes or ["nothing to change"]:
        print(f"privileges of {service.app_role}: {change}")


async def _provision(service: ConsoleService, args: argparse.Namespace) -> None:
    if args.bulk:
        await _provision_many(service, args)
        return
    tenant = await service.provision(args.keys[0], args.name, print_event, not args.alembic)
    if args.json:
        _emit_json(tenant.as_json())
    else:
        print(
            f"tenant {tenant.key} is {tenant.status} (schema {tenant.schema_name}, id {tenant.id})"
        )


async def _provision_many(service: ConsoleService, args: argparse.Namespace) -> None:
    """Several keys: a progress line (failures and notes above it), then a summary."""
    bar = ProgressBar(sys.stderr)

    def show(event: StepEvent) -> None:
        if event.phase in (Phase.FAILED, Phase.INFO):
            bar.note(format_event(event))

    report = await service.provision_many(
        args.keys, show, not args.alembic, args.concurrency, progress=bar.update
    )
    bar.finish(report)
    if args.json:
        _emit_json(report.as_json())
    else:
        print(
            f"{report.total} tenant(s): {report.done} ACTIVE, {report.failed} failed, "
            f"{report.skipped} busy in {report.elapsed_s or 0:.1f} s ({report.rate:.1f} tenants/s)"
        )
        failures = report.unsuccessful()
        if failures:
            _print_table(
                ("KEY", "RESULT", "STEP", "DETAIL"),
                [(o.key, o.result, o.step or "-", o.error or "") for o in failures],
            )
    if report.failed or report.skipped:
        raise OperationFailed(
            f"{report.failed + report.skipped} of {report.total} tenant(s) not provisioned "
            "(listed above); fix the cause, then run goconsole tenants provision again with "
            "those keys (a tenant left INITIALIZING or FAILED is finished; a key in use must "
            "change)"
        )


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


async def _migrate_status(service: ConsoleService, args: argparse.Namespace) -> None:
    status = await service.migrations.status()
    if args.json:
        _emit_json(status)
        return
    total = sum(r["tenants"] for r in status["revisions"]) or 1
    rows = [
        (
            r["revision"],
            str(r["tenants"]),
            "#" * max(1, round(30 * r["tenants"] / total)),
            r["state"],
        )
        for r in status["revisions"]
    ]
    _print_table(("REVISION", "TENANTS", "", "STATE"), rows)
    print(
        f"head {status['head']}; {status['behind']} tenant(s) behind, "
        f"{status['unknown']} at an unknown revision (ahead of head, not in this console's "
        "tree, or no version row: not migrated)"
    )


async def _migrate_runs(service: ConsoleService, args: argparse.Namespace) -> None:
    runs = await service.migrations.runs()
    if args.json:
        _emit_json(runs)
        return
    _print_table(
        ("RUN", "STARTED", "TARGET", "STATUS", "OK", "FAILED", "BUSY", "PENDING"),
        [
            (
                r["id"],
                r["started_at"][:19],
                r["target"],
                r["status"],
                str(r["succeeded"]),
                str(r["failed"]),
                str(r["skipped_busy"]),
                str(r["pending"]),
            )
            for r in runs
        ],
    )


async def _plan(service: ConsoleService, args: argparse.Namespace) -> MigrationPlan:
    keys = [k.strip() for k in args.tenants.split(",")] if args.tenants else None
    status = parse_status(args.status) if args.status else None
    return await service.migrations.plan(args.to, keys, status)


def _print_plan(plan: MigrationPlan) -> None:
    print(
        f"target {plan.target}: {plan.pending} tenant(s) to migrate, "
        f"{len(plan.at_target)} already there, {len(plan.skipped)} skipped"
    )
    for group in plan.groups:
        print(
            f"\n== {group.from_rev} -> {group.to_rev}: {len(group.tenants)} tenant(s), "
            f"method {group.method}{' (' + group.reason + ')' if group.reason else ''}"
        )
        if group.sql is not None:
            print(display_sql(group.sql).rstrip())
    for tenant, reason in plan.skipped:
        print(f"skipped {tenant.key}: {reason}")


async def _migrate_plan(service: ConsoleService, args: argparse.Namespace) -> None:
    plan = await _plan(service, args)
    if args.json:
        _emit_json(plan.as_json())
    else:
        _print_plan(plan)


async def _migrate_all(service: ConsoleService, args: argparse.Namespace) -> None:
    plan = await _plan(service, args)
    if args.dry_run:
        await _migrate_plan(service, args)
        return
    if args.lock_timeout is not None:
        service.migrations.lock_timeout_s = args.lock_timeout
    await _execute(service, plan, args)


async def _migrate_retry(service: ConsoleService, args: argparse.Namespace) -> None:
    target, keys, _ = await service.migrations.run_failures(args.run)
    if not keys:
        print("nothing to retry: the run has no failed, busy or pending tenants")
        return
    plan = await service.migrations.plan(target, keys)
    if args.lock_timeout is not None:
        service.migrations.lock_timeout_s = args.lock_timeout
    await _execute(service, plan, args)


async def _execute(service: ConsoleService, plan: MigrationPlan, args: argparse.Namespace) -> None:
    bar = ProgressBar(sys.stderr)
    state = await service.migrations.run(plan, args.concurrency, bar.update, _migrate_event)
    bar.finish(state)
    if args.json:
        _emit_json(state.as_json())
    else:
        print(
            f"run {state.run_id}: {state.done} succeeded, {state.failed} failed, "
            f"{state.skipped} skipped (busy), {state.rate:.1f} tenants/s"
        )
        for key, error in sorted(state.failures.items()):
            print(f"  {key}: {error}")
    if state.failed or state.skipped:
        raise OperationFailed(
            f"{state.failed + state.skipped} tenant(s) not migrated; "
            f"fix the cause, then: goconsole migrate retry {state.run_id}"
        )


def _migrate_event(event: StepEvent) -> None:
    if event.tenant is None or event.phase is Phase.FAILED:
        print_event(event)


class Progress(Protocol):
    """What a progress line shows: a migration run's or a bulk provision's counts."""

    @property
    def total(self) -> int: ...

    @property
    def done(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def skipped(self) -> int: ...

    @property
    def remaining(self) -> int: ...

    @property
    def rate(self) -> float: ...

    @property
    def eta_s(self) -> float | None: ...


class ProgressBar:
    """One status line of a run over many tenants on a terminal; a line every few seconds
    otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0
        self._shown = -1  # tenants finished in the line last drawn

    def note(self, text: str) -> None:
        """A line of its own above the status line (which the next update redraws)."""
        if self._tty:
            print("\r\x1b[2K" + text, file=self._out, flush=True)
            self._last, self._shown = 0.0, -1
        else:
            print(text, file=self._out, flush=True)

    def update(self, state: Progress, force: bool = False) -> None:
        """Redraw when more tenants finished, at most 10 times a second on a terminal and
        every 5 s otherwise (``force``: now, whatever changed)."""
        now = time.monotonic()
        finished = state.total - state.remaining
        if not force and (
            finished == self._shown or now - self._last < (0.1 if self._tty else 5.0)
        ):
            return
        self._last, self._shown = now, finished
        width = 30
        filled = round(width * finished / state.total) if state.total else width
        eta = f"{state.eta_s:.0f}s" if state.eta_s is not None else "-"
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{state.total} "
            f"done {state.done} failed {state.failed} busy {state.skipped} "
            f"remaining {state.remaining} {state.rate:.1f}/s eta {eta}"
        )
        print(
            ("\r" + line) if self._tty else line,
            end="" if self._tty else "\n",
            file=self._out,
            flush=True,
        )

    def finish(self, state: Progress) -> None:
        """Final redraw and newline."""
        self.update(state, force=True)
        if self._tty:
            print(file=self._out)


async def _pool_show(service: ConsoleService, args: argparse.Namespace) -> None:
    interval = args.interval or service.settings.pgbouncer.poll_interval
    if not args.watch:
        await service.pools.snapshot()  # baseline for the rates
        await asyncio.sleep(interval)
        snapshot = await service.pools.snapshot()
        if args.json:
            _emit_json(snapshot.as_json())
        else:
            _print_pools(snapshot)
        return
    monitor = service.pools.monitor
    taken = 0
    while args.count is None or taken < args.count:
        taken += 1
        last = args.count is not None and taken >= args.count
        try:
            snapshot = await service.pools.snapshot()
        except PgBouncerUnavailable as exc:
            if last:  # the watch ends on a failed sample: exit 1
                raise
            delay = monitor.next_delay(interval)
            print(f"{exc.message}; retrying in {delay:g}s", file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            continue
        if args.json:
            print(json.dumps(snapshot.as_json(), default=str), flush=True)
        else:
            if sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")
            _print_pools(snapshot)
            print(flush=True)
        if not last:
            await asyncio.sleep(monitor.next_delay(interval))


def _print_pools(snapshot: PoolSnapshot) -> None:
    limits = snapshot.limits
    db_limit = str(limits.max_db_connections) if limits.max_db_connections else "unlimited"
    print(
        f"{snapshot.version} at {snapshot.taken_at:%H:%M:%S} UTC "
        f"(snapshot {snapshot.latency_ms:.1f} ms): clients {snapshot.clients}/"
        f"{limits.max_client_conn}, waiting {snapshot.waiting}, server connections "
        f"{snapshot.servers} (busiest database {snapshot.busiest_servers}/{db_limit})"
    )
    if snapshot.rates_reset:
        print("counters went backwards (PgBouncer restarted): rates start again")
    rows = []
    for view in snapshot.pools:
        r = view.rates
        rows.append(
            (
                view.name,
                str(view.pool.cl_active),
                str(view.pool.cl_waiting),
                str(view.pool.sv_active),
                str(view.pool.sv_idle),
                str(view.pool.sv_used),
                f"{view.pool.maxwait_s:.3f}s",
                f"{view.pool_size}+{view.reserve_pool}",
                f"{view.utilisation:.0%}",
                "-" if r is None else f"{r.xact_per_s:.1f}",
                "-" if r is None else f"{r.query_per_s:.1f}",
                "-" if r is None else f"{r.avg_query_ms:.2f}",
                "-" if r is None else f"{r.avg_wait_ms:.2f}",
                ("! " + ", ".join(view.alerts)) if view.alerts else "ok",
            )
        )
    _print_table(
        (
            "DATABASE",
            "CL_ACT",
            "CL_WAIT",
            "SV_ACT",
            "SV_IDLE",
            "SV_USED",
            "MAXWAIT",
            "SIZE",
            "UTIL",
            "TX/S",
            "Q/S",
            "AVG_Q_MS",
            "AVG_WAIT_MS",
            "STATE",
        ),
        rows,
    )
    for view in snapshot.pools:
        if view.reason is not None:
            print(f"{view.name}: clients wait with no server connection: {view.reason}")


async def _pool_clients(service: ConsoleService, args: argparse.Namespace) -> None:
    clients = await service.pools.clients(args.key)
    if args.json:
        _emit_json([dataclasses.asdict(c) for c in clients])
        return
    _print_table(
        ("USER", "ADDRESS", "STATE", "CONNECTED", "LAST REQUEST", "APPLICATION"),
        [
            (
                c.user,
                f"{c.address}:{c.port}",
                c.state,
                c.connected_at,
                c.request_at,
                c.application_name,
            )
            for c in clients
        ],
    )
    print(f"{len(clients)} client(s) on {schema_for(args.key)}")


async def _pool_set_size(service: ConsoleService, args: argparse.Namespace) -> None:
    alias = await service.pools.set_size(args.key, args.size, args.reserve, print_event)
    print(f"{alias.name}: pool_size {alias.pool_size}, reserve_pool {alias.reserve_pool}")


async def _pool_set_default(service: ConsoleService, args: argparse.Namespace) -> None:
    size = await service.pools.set_default(args.size, print_event)
    print(f"default_pool_size is {size}")


async def _pool_pause(service: ConsoleService, args: argparse.Namespace) -> None:
    await service.pools.pause(args.key, args.timeout, print_event)
    print(f"{schema_for(args.key)} is paused: no transaction runs until 'goconsole pool resume'")


async def _pool_simple(service: ConsoleService, args: argparse.Namespace) -> None:
    await service.pools.simple(args.action, args.key, print_event)
    done = {
        "resume": "resumed",
        "disable": "disabled (new clients are refused)",
        "enable": "enabled",
        "reconnect": "recycling its server connections",
    }
    print(f"{schema_for(args.key)} is {done[args.action]}")


async def _pool_kill(service: ConsoleService, args: argparse.Namespace) -> None:
    dropped = await service.pools.kill(args.key, args.keep_paused, print_event)
    state = "left paused" if args.keep_paused else "accepting clients again"
    print(f"{schema_for(args.key)}: {dropped} client(s) dropped; pool {state}")


async def _pool_sync(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.pools.sync(print_event)
    if args.json:
        _emit_json(report.as_json())
        return
    for line in report.lines():
        print(line)
    print(report.summary())


async def _check_privileges(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.check_privileges()
    if args.json:
        _emit_json(report.as_json())
    else:
        _print_table(
            ("KIND", "OBJECT", "PRIVILEGE", "VIA", "EXPECTED"),
            [
                (p.kind, p.object, p.privilege, p.via, "yes" if p.expected else "NO")
                for p in report.privileges
            ],
        )
        for finding in report.findings:
            print(f"FINDING: {finding.problem}; fix: {finding.fix}")
        if report.clean:
            print(f"no findings: {report.role} holds only the documented interface")
    if not report.clean:
        raise OperationFailed(
            f"{len(report.findings)} finding(s) for role {report.role} on database "
            f"{report.database} (listed above)"
        )


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
    ("check-privileges", None): _check_privileges,
    ("migrate", "status"): _migrate_status,
    ("migrate", "runs"): _migrate_runs,
    ("migrate", "plan"): _migrate_plan,
    ("migrate", "all"): _migrate_all,
    ("migrate", "retry"): _migrate_retry,
    ("pool", "show"): _pool_show,
    ("pool", "clients"): _pool_clients,
    ("pool", "set-size"): _pool_set_size,
    ("pool", "set-default"): _pool_set_default,
    ("pool", "pause"): _pool_pause,
    ("pool", "resume"): _pool_simple,
    ("pool", "disable"): _pool_simple,
    ("pool", "enable"): _pool_simple,
    ("pool", "reconnect"): _pool_simple,
    ("pool", "kill"): _pool_kill,
    ("pool", "sync"): _pool_sync,
}
