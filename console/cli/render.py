"""How the CLI shows things: tables, sizes, progress events and the progress bar of a run over
many tenants, JSON. One copy each; the commands only choose what goes in."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from console.cli.hints import hint_text
from console.core.display import PHASE_MARKS, human_size
from console.core.events import Phase, StepEvent


def print_event(event: StepEvent, out: TextIO = sys.stderr) -> None:
    """Render one progress event as a line."""
    print(format_event(event), file=out, flush=True)


def format_event(event: StepEvent) -> str:
    """One progress event as a line of text."""
    who = f"{event.operation} {event.tenant}" if event.tenant else event.operation
    took = f" ({event.duration_ms:.0f} ms)" if event.duration_ms is not None else ""
    text = event.message
    if event.phase is Phase.DONE and event.details.get("method"):
        text += f" [{event.details['method']}]"
    return f"[{who}] {PHASE_MARKS[event.phase]} {event.step}: {text}{hint_text(event.hint)}{took}"


def emit_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout (what ``--json`` prints)."""
    print(json.dumps(payload, indent=2, default=str))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns two spaces apart, headers first."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def size(n: int) -> str:
    """Bytes as a table shows them: ``12 MB`` (``1.5 TB``)."""
    return human_size(n, whole=True)


class Progress(Protocol):
    """What a progress line shows: a migration run's or a bulk provision's counts."""

    @property
    def total(self) -> int: ...

    @property
    def done(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def skipped(self) -> int: ...

    @property
    def remaining(self) -> int: ...

    @property
    def rate(self) -> float: ...

    @property
    def eta_s(self) -> float | None: ...


class ProgressBar:
    """One status line of a run over many tenants on a terminal; a line every few seconds
    otherwise."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0
        self._shown = -1  # tenants finished in the line last drawn

    def note(self, text: str) -> None:
        """A line of its own above the status line (which the next update redraws)."""
        if self._tty:
            print("\r\x1b[2K" + text, file=self._out, flush=True)
            self._last, self._shown = 0.0, -1
        else:
            print(text, file=self._out, flush=True)

    def update(self, state: Progress, force: bool = False) -> None:
        """Redraw when more tenants finished, at most 10 times a second on a terminal and
        every 5 s otherwise (``force``: now, whatever changed)."""
        now = time.monotonic()
        finished = state.total - state.remaining
        if not force and (
            finished == self._shown or now - self._last < (0.1 if self._tty else 5.0)
        ):
            return
        self._last, self._shown = now, finished
        width = 30
        filled = round(width * finished / state.total) if state.total else width
        eta = f"{state.eta_s:.0f}s" if state.eta_s is not None else "-"
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{state.total} "
            f"done {state.done} failed {state.failed} busy {state.skipped} "
            f"remaining {state.remaining} {state.rate:.1f}/s eta {eta}"
        )
        print(
            ("\r" + line) if self._tty else line,
            end="" if self._tty else "\n",
            file=self._out,
            flush=True,
        )

    def finish(self, state: Progress) -> None:
        """Final redraw and newline."""
        self.update(state, force=True)
        if self._tty:
            print(file=self._out)
