"""``goconsole init``: create or upgrade the control schema, the app role and the template."""

from __future__ import annotations

import argparse

from console.cli.command import Commands
from console.cli.render import print_event
from console.core.service import ConsoleService


async def _init(service: ConsoleService, args: argparse.Namespace) -> None:
    report = await service.init(print_event)
    print(
        f"control schema at {report.control_revision}, role {service.app_role} "
        f"{report.app_role}, template at {report.template_revision}"
    )
    for change in report.privilege_changes or ["nothing to change"]:
        print(f"privileges of {service.app_role}: {change}")


COMMANDS: Commands = {("init", None): _init}
