"""The version line ``goconsole --version`` prints, from the installed package's metadata."""

from __future__ import annotations


def version_text() -> str:
    """``goconsole X.Y.Z``, from the installed package's metadata."""
    from importlib.metadata import version  # only when asked: not on every CLI call

    return f"goconsole {version('goconsole')}"
