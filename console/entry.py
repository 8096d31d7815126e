"""The ``goconsole`` program: answers ``--version`` without importing the core, else runs the CLI
with the launcher that opens the terminal console (the composition root of both front ends)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from console.version import version_text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``goconsole`` and ``python -m console``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # the CLI parser answers it too, after importing everything
        print(version_text())
        return 0
    from console.cli import main as run_cli
    from console.launch import run_app

    return run_cli(args, run_app)
