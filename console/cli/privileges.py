"""``goconsole check-privileges``: what the application role holds outside its tenant schemas;
exit 1 on findings."""

from __future__ import annotations

import argparse

from console.cli.command import Commands
from console.cli.hints import fix_text
from console.cli.render import emit_json, print_table
from console.core.errors import OperationFailed
from console.core.service import ConsoleService


async def _check_privileges(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.check_privileges()
    if args.json:
        emit_json(report.as_json(fix_text))
    else:
        print_table(
            ("KIND", "OBJECT", "PRIVILEGE", "VIA", "EXPECTED"),
            [
                (p.kind, p.object, p.privilege, p.via, "yes" if p.expected else "NO")
                for p in report.privileges
            ],
        )
        for finding in report.findings:
            print(f"FINDING: {finding.problem}; fix: {fix_text(finding)}")
        if report.clean:
            print(f"no findings: {report.role} holds only the documented interface")
    if not report.clean:
        raise OperationFailed(
            f"{len(report.findings)} finding(s) for role {report.role} on database "
            f"{report.database} (listed above)"
        )


COMMANDS: Commands = {("check-privileges", None): _check_privileges}
