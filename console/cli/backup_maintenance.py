"""``goconsole backups verify|prune``: keeping the backups sound (checksums, restore tests) and
within retention (each removal listed with its reason)."""

from __future__ import annotations

import argparse
import sys

from console.cli.backups import ProgressLine
from console.cli.command import Commands
from console.cli.render import emit_json, print_table, size
from console.core.backups.prune import PruneReport
from console.core.backups.report import BackupProgress
from console.core.backups.verify import VerifyReport
from console.core.errors import OperationFailed
from console.core.service import ConsoleService


async def _verify(service: ConsoleService, args: argparse.Namespace) -> None:
    progress = BackupProgress()
    line = ProgressLine(progress, sys.stderr)

    report = await line.around(
        service.backups.verify(
            None if args.all else args.keys,
            restore_test=args.restore_test,
            concurrency=args.concurrency,
            sink=line.show,
            progress=progress,
        )
    )
    if args.json:
        emit_json(report.as_json())
    else:
        _print_verify(report)
    if report.failures:
        raise OperationFailed(
            f"{len(report.failures)} of {len(report.tenants)} tenant(s) failed verification "
            "(listed above)"
        )


def _print_verify(report: VerifyReport) -> None:
    level = "restore test" if report.restore_test else "checksum"
    rows = [
        (
            t.key,
            str(len(t.links)),
            "ok" if t.ok else "FAILED",
            f"{t.restore.total_ms / 1000:.1f}s" if t.restore and t.ok else "-",
        )
        for t in report.tenants
    ]
    if rows:
        print_table(("KEY", "BACKUPS", "RESULT", "RESTORE TOOK"), rows)
    verified = len(report.tenants) - len(report.failures)
    print(
        f"{len(report.tenants)} tenant(s) verified at the {level} level: {verified} ok, "
        f"{len(report.failures)} failed in {report.elapsed_s:.1f} s"
    )
    if report.failures:
        print()
        print_table(("KEY", "FAILURE"), [(t.key, t.failure or "") for t in report.failures])


async def _prune(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.backups.prune(dry_run=args.dry_run)
    if args.json:
        emit_json(report.as_json())
    else:
        _print_prune(report)
    if report.failures:
        raise OperationFailed(
            f"{len(report.failures)} tenant(s) not pruned (listed above); run "
            "goconsole backups prune again once they are free"
        )


def _print_prune(report: PruneReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    for pruned in report.removed:
        b = pruned.backup
        print(f"{pruned.tenant} {b.kind.value} {b.id}: {pruned.reason}")
        for path in pruned.files:
            print(f"  {verb} {path}")
    for key, notes in report.notes.items():
        for note in notes:
            print(f"{key}: {note}")
    tenants = len({p.tenant for p in report.removed})
    print(
        f"{verb} {len(report.removed)} backup(s) of {tenants} tenant(s), {size(report.freed_bytes)}"
    )
    if report.failures:
        print()
        print_table(("KEY", "FAILURE"), list(report.failures.items()))


COMMANDS: Commands = {
    ("backups", "verify"): _verify,
    ("backups", "prune"): _prune,
}
