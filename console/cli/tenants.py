"""``goconsole tenants …``: provision (one or many), list, show, deactivate, reactivate,
offboard."""

from __future__ import annotations

import argparse
import json
import sys

from console.cli.audit import print_audit
from console.cli.command import Commands
from console.cli.render import (
    ProgressBar,
    emit_json,
    format_event,
    print_event,
    print_table,
    size,
)
from console.core.errors import OperationFailed
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService
from console.core.tenants.registry import parse_status


async def _provision(service: ConsoleService, args: argparse.Namespace) -> None:
    if args.bulk:
        await _provision_many(service, args)
        return
    tenant = await service.provision(args.keys[0], args.name, print_event, not args.alembic)
    if args.json:
        emit_json(tenant.as_json())
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
        emit_json(report.as_json())
    else:
        print(
            f"{report.total} tenant(s): {report.done} ACTIVE, {report.failed} failed, "
            f"{report.skipped} busy in {report.elapsed_s or 0:.1f} s ({report.rate:.1f} tenants/s)"
        )
        failures = report.unsuccessful()
        if failures:
            print_table(
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
        emit_json([t.as_json() for t in tenants])
        return
    rows = [
        (t.key, t.status.value, t.display_name, t.created_at.strftime("%Y-%m-%d %H:%M"))
        for t in tenants
    ]
    print_table(("KEY", "STATUS", "NAME", "CREATED"), rows)
    print(f"{len(tenants)} tenant(s)")


async def _show(service: ConsoleService, args: argparse.Namespace) -> None:
    detail = await service.tenant_detail(args.key)
    if args.json:
        emit_json(detail.as_json())
        return
    t = detail.tenant.as_json()
    for label in ("key", "display_name", "status", "schema_name", "id", "cluster", "created_at"):
        print(f"{label:>13}: {t[label]}")
    print(f"{'revision':>13}: {detail.revision or '(no schema)'}")
    print(f"{'config':>13}: {json.dumps(t['config'])}")
    print()
    print_table(
        ("TABLE", "EST. ROWS", "SIZE", "RLS", "FORCED", "POLICIES"),
        [
            (
                r.table,
                str(r.estimated_rows),
                size(r.bytes),
                "yes" if r.rls_enabled else "NO",
                "yes" if r.rls_forced else "NO",
                str(r.policies),
            )
            for r in detail.tables
        ],
    )
    if detail.backups:
        print()
        print_table(
            ("BACKUP", "STATUS", "STARTED", "SIZE", "VERIFIED"),
            [
                (
                    b.kind,
                    b.status,
                    b.started_at.isoformat()[:19],
                    size(b.bytes or 0),
                    b.verify_result or "-",
                )
                for b in detail.backups
            ],
        )
    print()
    print_audit([a.as_json() for a in detail.audit])


async def _deactivate(service: ConsoleService, args: argparse.Namespace) -> None:
    tenant = await service.deactivate(args.key, args.timeout, args.force, print_event)
    if args.json:
        emit_json(tenant.as_json())
    else:
        print(f"tenant {tenant.key} is {tenant.status}")


async def _reactivate(service: ConsoleService, args: argparse.Namespace) -> None:
    tenant = await service.reactivate(args.key, print_event)
    print(f"tenant {tenant.key} is {tenant.status}")


async def _offboard(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.offboard(args.key, args.timeout, args.force, print_event)
    if args.json:
        emit_json(report.as_json())
    else:
        print(report.as_text())


COMMANDS: Commands = {
    ("tenants", "provision"): _provision,
    ("tenants", "list"): _list,
    ("tenants", "show"): _show,
    ("tenants", "deactivate"): _deactivate,
    ("tenants", "reactivate"): _reactivate,
    ("tenants", "offboard"): _offboard,
}
