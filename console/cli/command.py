"""What a command is: an async function of the connected service and the parsed arguments,
registered under its (command, action) pair."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from console.core.service import ConsoleService

Command = Callable[[ConsoleService, argparse.Namespace], Awaitable[None]]
Commands = dict[tuple[str, str | None], Command]
