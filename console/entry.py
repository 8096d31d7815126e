"""The ``goconsole`` program: answers ``--version`` without importing the core, else the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import version


def version_text() -> str:
    """``goconsole X.Y.Z``, from the installed package's metadata."""
    return f"goconsole {version('goconsole')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``goconsole`` and ``python -m console``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # the CLI parser answers it too, after importing everything
        print(version_text())
        return 0
    from console.cli import main as run_cli

    return run_cli(args)
