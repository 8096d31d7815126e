"""``goconsole backups restore|replaced|purge-replaced|drill``: restoring one tenant to a point
in time (plan, typed confirmation, progress, report), rolling back, the replaced schemas kept
for that, and restore drills."""

from __future__ import annotations

import argparse
import sys

from console.cli.command import Commands
from console.cli.render import emit_json, format_event, print_event, print_table, size
from console.cli.validate import confirm
from console.core.backups.recovery import parse_target
from console.core.backups.restore_report import plan_lines
from console.core.errors import InvalidInput, OperationFailed
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService


def check_restore(args: argparse.Namespace) -> None:
    """Before connecting: one of --to / --backup (unless --discard or --rollback), a valid
    timestamp and day count."""
    modes = [m for m in ("discard", "rollback") if getattr(args, m)]
    chosen = [m for m in ("to", "backup") if getattr(args, m)]
    if len(modes) > 1 or (modes and chosen):
        raise InvalidInput("--discard and --rollback take no --to/--backup and exclude each other")
    if not modes and len(chosen) != 1:
        raise InvalidInput(
            "backups restore needs exactly one of --to TIMESTAMP or --backup ID (or --discard, "
            "--rollback): e.g. goconsole backups restore acme --to 2026-12-01T03:00:00Z"
        )
    if args.to:
        args.to = parse_target(args.to)
    if args.keep_replaced is not None and args.keep_replaced < 0:
        raise InvalidInput(f"--keep-replaced must be 0 days or more, got {args.keep_replaced:g}")
    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise InvalidInput(f"--timeout must be between 0 and 3600 seconds, got {args.timeout:g}")


async def _restore(service: ConsoleService, args: argparse.Namespace) -> None:
    backups = service.backups
    sink = (lambda _e: None) if args.json else print_event
    if args.discard:
        dropped = await backups.discard_recovery(args.key, sink)
        if args.json:
            emit_json({"tenant": args.key, "dropped": dropped})
        else:
            print(f"{args.key}: dropped {', '.join(dropped) or 'no recovery schema'}")
        return
    if args.rollback:
        if not service.read_only:
            confirm("rollback", args.key, args.yes, "switches the replaced schema back in")
        report = await backups.rollback(args.key, timeout=args.timeout, force=args.force, sink=sink)
    else:
        plan = await backups.restore_plan(args.key, to=args.to, backup_id=args.backup)
        if args.dry_run:
            if args.json:
                emit_json(plan.as_json())
            else:
                print("\n".join([f"Restore plan for tenant {plan.tenant}", *plan_lines(plan)]))
            return
        if not args.json:
            print("\n".join([f"Restore plan for tenant {plan.tenant}", *plan_lines(plan)]))
        if not service.read_only:
            confirm("restore", args.key, args.yes, "replaces the live schema with the backups'")
        report = await backups.restore(
            args.key,
            to=args.to,
            backup_id=args.backup,
            keep_replaced_days=args.keep_replaced,
            timeout=args.timeout,
            force=args.force,
            sink=sink,
        )
    if args.json:
        emit_json(report.as_json())
    else:
        print(report.as_text())


async def _replaced(service: ConsoleService, args: argparse.Namespace) -> None:
    found = await service.backups.replaced(args.key)
    if args.json:
        emit_json([r.as_json() for r in found])
        return
    print_table(
        ("TENANT", "SCHEMA", "REPLACED", "KEEP UNTIL", "SIZE"),
        [
            (
                r.tenant,
                r.schema,
                f"{r.replaced_at:%Y-%m-%d %H:%M}",
                f"{r.keep_until:%Y-%m-%d %H:%M}",
                size(r.bytes),
            )
            for r in found
        ],
    )


async def _purge_replaced(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.backups.purge_replaced(dry_run=args.dry_run, sink=print_event)
    if args.json:
        emit_json(report.as_json())
    else:
        verb = "would drop" if args.dry_run else "dropped"
        for r in report.dropped:
            print(f"{verb} {r.schema} ({r.tenant}, kept until {r.keep_until:%Y-%m-%d %H:%M})")
        for schema, error in report.errors.items():
            print(f"not dropped {schema}: {error}", file=sys.stderr)
        print(f"{len(report.dropped)} {verb}, {len(report.kept)} kept")
    if report.errors:
        raise OperationFailed(f"{len(report.errors)} replaced schema(s) not dropped (above)")


async def _drill(service: ConsoleService, args: argparse.Namespace) -> None:
    def show(event: StepEvent) -> None:
        if event.phase in (Phase.FAILED, Phase.INFO) and not args.json:
            print(format_event(event), file=sys.stderr)

    report = await service.backups.drill(args.keys or None, sample=args.sample, sink=show)
    if args.json:
        emit_json(report.as_json())
    else:
        print_table(
            ("TENANT", "BACKUPS", "RESULT", "TOOK"),
            [
                (t.tenant, str(len(t.links)), t.result, f"{t.elapsed_ms / 1000:.1f}s")
                for t in report.tenants
            ],
        )
    if report.failures:
        raise OperationFailed(f"{len(report.failures)} drill(s) failed (listed above)")


COMMANDS: Commands = {
    ("backups", "restore"): _restore,
    ("backups", "replaced"): _replaced,
    ("backups", "purge-replaced"): _purge_replaced,
    ("backups", "drill"): _drill,
}
