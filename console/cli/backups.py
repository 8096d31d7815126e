"""``goconsole backups …``: run (full or incremental, many tenants at once, with a progress
line), list, show."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TextIO, TypeVar

from console.cli.command import Commands
from console.cli.render import emit_json, format_event, print_table, size
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.report import BackupProgress, BackupRunReport
from console.core.errors import OperationFailed
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService

T = TypeVar("T")
REDRAW_TTY_S = 0.2
REDRAW_LOG_S = 5.0


class ProgressLine:
    """The status line of a backup run: tenants, MB/s, ETA; redrawn in place on a terminal,
    a line every few seconds otherwise; notes (failures, why a full) go above it."""

    def __init__(self, progress: BackupProgress, out: TextIO) -> None:
        self._progress = progress
        self._out = out
        self._tty = out.isatty()
        self._drawn = False

    def note(self, text: str) -> None:
        """A line of its own above the status line."""
        prefix = "\r\x1b[2K" if self._tty and self._drawn else ""
        print(prefix + text, file=self._out, flush=True)
        self._drawn = False

    def draw(self) -> None:
        """Show the current counts."""
        p = self._progress
        finished = p.done + p.failed
        width = 30
        filled = round(width * finished / p.total) if p.total else width
        eta = f"{p.eta_s:.0f}s" if p.eta_s is not None else "-"
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{p.total} tenants "
            f"failed {p.failed}  {p.mb_per_s:.1f} MB/s  eta {eta}"
        )
        if self._tty:
            print("\r\x1b[2K" + line, end="", file=self._out, flush=True)
            self._drawn = True
        else:
            print(line, file=self._out, flush=True)

    async def keep_drawing(self) -> None:
        """Redraw until cancelled."""
        pause = REDRAW_TTY_S if self._tty else REDRAW_LOG_S
        while True:
            await asyncio.sleep(pause)
            self.draw()

    def finish(self) -> None:
        """Final redraw and newline."""
        self.draw()
        if self._tty:
            print(file=self._out)

    def show(self, event: StepEvent) -> None:
        """An EventSink: failures and notes (why a full) above the line."""
        if event.phase in (Phase.FAILED, Phase.INFO):
            self.note(format_event(event))

    async def around(self, work: Awaitable[T]) -> T:
        """Await ``work`` while redrawing, then draw the final line."""
        ticker = asyncio.create_task(self.keep_drawing())
        try:
            result = await work
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        self.finish()
        return result


def ratio(record: BackupRecord) -> str:
    """Compression ratio as a table shows it (``3.1x``)."""
    value = record.compression_ratio
    return f"{value:.1f}x" if value else "-"


async def _run(service: ConsoleService, args: argparse.Namespace) -> None:
    progress = BackupProgress()
    line = ProgressLine(progress, sys.stderr)

    kind = BackupKind(args.kind) if args.kind else None
    service.backups.require_ready()
    started = time.monotonic()
    report = await line.around(
        service.backups.run(
            None if args.all else args.keys,
            kind,
            concurrency=args.concurrency,
            sink=line.show,
            progress=progress,
        )
    )
    if args.json:
        emit_json(report.as_json())
    else:
        _print_report(report, time.monotonic() - started)
    if report.failures:
        raise OperationFailed(
            f"{len(report.failures)} of {len(report.outcomes)} tenant(s) not backed up "
            "(listed above); fix the cause and run goconsole backups run again with those keys"
        )


def _print_report(report: BackupRunReport, elapsed: float) -> None:
    rows = [
        (
            o.key,
            o.record.kind.value,
            size(o.record.bytes or 0),
            ratio(o.record),
            f"{(o.record.duration_ms or 0) / 1000:.1f}s",
            f"full: {o.why_full}" if o.why_full else "",
        )
        for o in report.succeeded
        if o.record is not None
    ]
    if rows:
        print_table(("KEY", "KIND", "SIZE", "RATIO", "TOOK", "NOTE"), rows)
    print(
        f"{len(report.outcomes)} tenant(s): {len(report.succeeded)} backed up, "
        f"{len(report.failures)} failed; {size(report.bytes)} stored "
        f"({size(report.raw_bytes)} before compression) in {elapsed:.1f} s"
    )
    if report.failures:
        print()
        print_table(
            ("KEY", "RESULT", "REASON"), [(o.key, "FAILED", o.error or "") for o in report.failures]
        )


async def _list(service: ConsoleService, args: argparse.Namespace) -> None:
    records = await service.backups.history(args.key, args.limit)
    if args.json:
        emit_json([r.as_json() for r in records])
        return
    print_table(
        ("ID", "TENANT", "KIND", "STATUS", "STARTED", "SIZE", "RATIO", "VERIFIED", "PARENT"),
        [
            (
                str(r.id),
                r.tenant_key,
                r.kind.value,
                r.status.value,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                size(r.bytes) if r.bytes is not None else "-",
                ratio(r),
                r.verify_result or "-",
                str(r.parent_id)[:8] if r.parent_id else "-",
            )
            for r in records
        ],
    )
    print(f"{len(records)} backup(s)")


async def _show(service: ConsoleService, args: argparse.Namespace) -> None:
    detail = await service.backups.show(args.id)
    if args.json:
        emit_json(detail.as_json())
        return
    r = detail.record
    for label, value in (
        ("id", r.id),
        ("tenant", r.tenant_key),
        ("kind", r.kind.value),
        ("status", r.status.value),
        ("reason", r.reason),
        ("parent", r.parent_id or "-"),
        ("started", r.started_at.isoformat()),
        ("covers until", r.covers_until.isoformat() if r.covers_until else "-"),
        ("location", r.location or "-"),
        ("size", f"{size(r.bytes or 0)} ({size(r.raw_bytes or 0)} before compression)"),
        ("sha256", r.sha256 or "-"),
        ("compressed", "zstd" if r.compressed else "no"),
        ("encrypted", f"age to {', '.join(r.recipients)}" if r.encrypted else "no"),
        ("snapshot", r.snapshot or "-"),
        ("lsn", r.lsn or "-"),
        ("server", r.server_version or "-"),
        ("tree revision", r.tree_revision or "-"),
        ("verified", f"{r.verify_result} ({r.verify_level})" if r.verify_result else "no"),
        ("error", r.error or "-"),
    ):
        print(f"{label:>13}: {value}")
    manifest = detail.manifest
    if manifest is None:
        return
    print()
    incremental = r.kind is BackupKind.INCREMENTAL
    print_table(
        ("TABLE", "ROWS", "CHANGED" if incremental else "DIGEST"),
        [
            (
                name,
                str(t["rows"]),
                str(t["changed_rows"]) if incremental else t["digest"],
            )
            for name, t in manifest["tables"].items()
        ],
    )
    if manifest["files"]:
        print()
        print_table(
            ("FILE", "SIZE", "RAW", "SHA256"),
            [
                (f["name"], size(f["bytes"]), size(f["raw_bytes"]), f["sha256"])
                for f in manifest["files"]
            ],
        )


COMMANDS: Commands = {
    ("backups", "run"): _run,
    ("backups", "list"): _list,
    ("backups", "show"): _show,
}
