"""``goconsole health [--json] [--watch]``: every health check with its value, threshold and
state; exit 0 when all are OK, 1 when any is WARN, CRIT or UNKNOWN."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from console.cli.command import Commands
from console.cli.render import emit_json, print_table
from console.core.errors import OperationFailed
from console.core.health.model import HealthReport, State
from console.core.service import ConsoleService


async def _health(service: ConsoleService, args: argparse.Namespace) -> None:
    taken = 0
    while True:
        taken += 1
        report = await service.health.check()
        last = not args.watch or (args.count is not None and taken >= args.count)
        if args.json:
            if args.watch:
                print(json.dumps(report.as_json(), default=str), flush=True)
            else:
                emit_json(report.as_json())
        else:
            if args.watch and sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")
            print_report(report)
            if args.watch:
                print(flush=True)
        if last:
            break
        await asyncio.sleep(args.interval)
    if report.state is not State.OK:
        bad = [c for c in report.checks if c.state is not State.OK]
        raise OperationFailed(
            f"health {report.state.value}: {len(bad)} check(s) not OK: "
            + ", ".join(f"{c.name} {c.state.value}" for c in bad)
        )


def print_report(report: HealthReport) -> None:
    """The overall state, then one row per check."""
    print(
        f"health {report.state.value} at {report.taken_at:%Y-%m-%d %H:%M:%S} UTC "
        f"({report.duration_ms:.0f} ms)"
    )
    print_table(
        ("CHECK", "STATE", "VALUE", "THRESHOLD", "SINCE (UTC)", "DETAIL"),
        [
            (
                c.name,
                c.state.value,
                c.shown,
                c.threshold or "-",
                f"{c.since:%m-%d %H:%M:%S}" if c.since else "-",
                c.detail,
            )
            for c in report.checks
        ],
    )
    for note in report.notes:
        print(note)


COMMANDS: Commands = {("health", None): _health}
