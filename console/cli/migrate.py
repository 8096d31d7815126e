"""``goconsole migrate …``: status, runs, plan, all, retry."""

from __future__ import annotations

import argparse
import sys

from console.cli.command import Commands
from console.cli.render import ProgressBar, emit_json, print_event, print_table
from console.core.errors import OperationFailed
from console.core.events import Phase, StepEvent
from console.core.migrations.plan import MigrationPlan, display_sql
from console.core.service import ConsoleService
from console.core.tenants.registry import parse_status


async def _migrate_status(service: ConsoleService, args: argparse.Namespace) -> None:
    status = await service.migrations.status()
    if args.json:
        emit_json(status.as_json())
        return
    total = sum(r.tenants for r in status.revisions) or 1
    rows = [
        (r.revision, str(r.tenants), "#" * max(1, round(30 * r.tenants / total)), r.state.value)
        for r in status.revisions
    ]
    print_table(("REVISION", "TENANTS", "", "STATE"), rows)
    print(
        f"head {status.head}; {status.behind} tenant(s) behind, "
        f"{status.unknown} at an unknown revision (ahead of head, not in this console's "
        "tree, or no version row: not migrated)"
    )


async def _migrate_runs(service: ConsoleService, args: argparse.Namespace) -> None:
    runs = await service.migrations.runs()
    if args.json:
        emit_json([r.as_json() for r in runs])
        return
    print_table(
        ("RUN", "STARTED", "TARGET", "STATUS", "OK", "FAILED", "BUSY", "PENDING"),
        [
            (
                str(r.id),
                r.started_at.isoformat()[:19],
                r.target,
                r.status,
                str(r.succeeded),
                str(r.failed),
                str(r.skipped_busy),
                str(r.pending),
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
        emit_json(plan.as_json())
    else:
        _print_plan(plan)


async def _migrate_all(service: ConsoleService, args: argparse.Namespace) -> None:
    plan = await _plan(service, args)
    if args.dry_run:
        await _migrate_plan(service, args)
        return
    await _execute(service, plan, args)


async def _migrate_retry(service: ConsoleService, args: argparse.Namespace) -> None:
    target, keys, _ = await service.migrations.run_failures(args.run)
    if not keys:
        print("nothing to retry: the run has no failed, busy or pending tenants")
        return
    plan = await service.migrations.plan(target, keys)
    await _execute(service, plan, args)


async def _execute(service: ConsoleService, plan: MigrationPlan, args: argparse.Namespace) -> None:
    bar = ProgressBar(sys.stderr)
    state = await service.migrations.run(
        plan, args.concurrency, bar.update, _migrate_event, lock_timeout_s=args.lock_timeout
    )
    bar.finish(state)
    if args.json:
        emit_json(state.as_json())
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


COMMANDS: Commands = {
    ("migrate", "status"): _migrate_status,
    ("migrate", "runs"): _migrate_runs,
    ("migrate", "plan"): _migrate_plan,
    ("migrate", "all"): _migrate_all,
    ("migrate", "retry"): _migrate_retry,
}
