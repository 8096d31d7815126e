"""The version line ``goconsole --version`` prints, from the installed package's metadata."""

from __future__ import annotations

from importlib.metadata import version


def version_text() -> str:
    """``goconsole X.Y.Z``, from the installed package's metadata."""
    return f"goconsole {version('goconsole')}"
