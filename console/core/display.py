"""Plain-text renderings both front ends show the same way: byte sizes and progress marks."""

from __future__ import annotations

from console.core.events import Phase

PHASE_MARKS = {Phase.STARTED: "…", Phase.DONE: "✓", Phase.FAILED: "✗", Phase.INFO: "·"}
_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(n: int | None, *, whole: bool = False) -> str:
    """``1.2 MB`` (``whole``: ``1 MB``, one decimal only in terabytes); an em dash when
    unknown."""
    if n is None:
        return "—"
    size = float(n)
    for unit in _UNITS[:-1]:
        if size < 1024:
            return f"{size:.0f} {unit}" if whole or unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} {_UNITS[-1]}"


def human_growth(n: int | None) -> str:
    """A size change with its sign: ``+1.2 MB``, ``-16.0 kB``, ``0 B``; an em dash when
    unknown."""
    if n is None:
        return "—"
    return ("+" if n > 0 else "-" if n < 0 else "") + human_size(abs(n))
