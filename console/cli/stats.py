"""``goconsole stats [KEY]``: the largest or fastest-growing tenants by their newest schema
statistics, or one tenant's figures with each table's row estimate."""

from __future__ import annotations

import argparse
from datetime import datetime

from console.cli.command import Commands
from console.cli.render import emit_json, print_table, size
from console.core.display import human_growth
from console.core.service import ConsoleService
from console.core.stats.history import GROWTH_DAYS, TenantStats

_NONE_YET = "no schema statistics collected yet (they are collected on schedule.schema_stats)"


async def _stats(service: ConsoleService, args: argparse.Namespace) -> None:
    if args.key is not None:
        found = await service.stats.top(1, key=args.key)
        if args.json:
            emit_json(found[0].as_json() if found else None)
        elif found:
            _print_one(found[0])
        else:
            print(f"no schema statistics for {args.key} yet")
        return
    rows = await service.stats.top(args.top, args.by)
    if args.json:
        emit_json([r.as_json() for r in rows])
        return
    if not rows:
        print(_NONE_YET)
        return
    print_table(
        ("KEY", "SIZE", f"GROWTH {GROWTH_DAYS}D", "TABLES", "EST. ROWS", "COLLECTED (UTC)"),
        [
            (
                r.key,
                size(r.total_bytes),
                human_growth(r.growth_bytes),
                str(r.tables),
                f"{r.estimated_rows:,}",
                _minute(r.collected_at),
            )
            for r in rows
        ],
    )


def _print_one(row: TenantStats) -> None:
    since = (
        f" since {row.baseline_at.isoformat()[:16].replace('T', ' ')}" if row.baseline_at else ""
    )
    for label, value in (
        ("key", row.key),
        ("collected", row.collected_at.isoformat()[:19].replace("T", " ") + " UTC"),
        ("size", size(row.total_bytes)),
        (f"growth {GROWTH_DAYS}d", human_growth(row.growth_bytes) + since),
        ("tables", str(row.tables)),
        ("est. rows", f"{row.estimated_rows:,}"),
    ):
        print(f"{label:>10}: {value}")
    print()
    tables = sorted((row.table_rows or {}).items())
    print_table(("TABLE", "EST. ROWS"), [(name, f"{count:,}") for name, count in tables])


def _minute(at: datetime) -> str:
    return at.isoformat()[:16].replace("T", " ")


COMMANDS: Commands = {("stats", None): _stats}
