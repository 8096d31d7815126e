"""``goconsole audit``: the audit log, newest first (and the table ``tenants show`` ends with)."""

from __future__ import annotations

import argparse
from typing import Any

from console.cli.command import Commands
from console.cli.render import emit_json, print_table
from console.core.service import ConsoleService


async def _audit(service: ConsoleService, args: argparse.Namespace) -> None:
    entries = [e.as_json() for e in await service.audit(args.key, args.limit)]
    if args.json:
        emit_json(entries)
    else:
        print_audit(entries)


def print_audit(entries: list[dict[str, Any]]) -> None:
    """Audit entries (as JSON objects) as a table."""
    print_table(
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


COMMANDS: Commands = {("audit", None): _audit}
