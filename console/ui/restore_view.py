"""What the restore form, the restore's progress and report, the replaced schemas and the drills
show, UI-free: words (never colour alone), one line per fact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from console.core.backups.catalog import BackupRecord
from console.core.backups.recovery import RestorePlan
from console.core.backups.replaced import ReplacedSchema
from console.core.backups.restore_report import DrillReport, RestoreReport
from console.core.backups.verify import RESTORE
from console.core.display import PHASE_MARKS, human_size
from console.core.events import Phase, StepEvent
from console.ui.backup_view import verified
from console.ui.tenant_view import age

# The restore's steps, in order (the core's event step names).
RESTORE_STEPS = ("plan", "recover", "apply", "validate", "switch", "finish")
CHOICE_COLUMNS = (
    ("covers", "Covers until (UTC)"),
    ("kind", "Kind"),
    ("size", "Size"),
    ("checked", "Checked"),
    ("id", "Id"),
)
REPLACED_COLUMNS = (
    ("tenant", "Tenant"),
    ("schema", "Replaced schema"),
    ("replaced", "Replaced"),
    ("size", "Size"),
    ("expires", "Kept until"),
)


def stamp(value: datetime | None) -> str:
    """``2026-12-01 02:00:00Z``; a dash when unknown."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def span(seconds_apart: float) -> str:
    """``3 h 5 min``, ``42 s``: how far the result is from the requested point."""
    seconds = int(abs(seconds_apart))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def choice_cells(record: BackupRecord) -> tuple[str, ...]:
    """One backup of the form's list, in CHOICE_COLUMNS order."""
    covers = record.covers_until or record.started_at
    return (
        covers.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        record.kind.value,
        human_size(record.bytes),
        verified(record),
        str(record.id)[:8],
    )


def plan_lines(plan: RestorePlan) -> list[str]:
    """The plan as the form shows it: the backups used (a link never checked is checked at
    the checksum level first), the point the result reflects and how far that is from the
    target, the size, the pool, a migration or a re-creation."""
    found = [f"Restore {plan.tenant} from {len(plan.links)} backup(s):"]
    found += [
        f"  {r.kind.value:<11} {r.started_at:%Y-%m-%d %H:%M}  {human_size(r.bytes):>9}  "
        + ("checksum first" if r.id in plan.unchecked else f"checked {verified(r)}")
        + f"  {str(r.id)[:8]}"
        for r in plan.links
    ]
    reflects = f"The result reflects {stamp(plan.reflects)}"
    if plan.target is not None and plan.distance_s is not None:
        reflects += f", {span(plan.distance_s)} before the requested {stamp(plan.target)}"
    found.append(reflects + ".")
    found.append(f"Expected size {human_size(plan.expected_bytes)} · pool {plan.pool}")
    if plan.migrate_from is not None:
        found.append(
            f"The recovery schema is migrated from {plan.migrate_from} to {plan.head_revision}."
        )
    if plan.recreate:
        found.append("The tenant is ARCHIVED: its schema is re-created and it is left INACTIVE.")
    return found + list(plan.notes)


def restore_steps(plan: RestorePlan, timeout: float, force: bool) -> list[str]:
    """The typed confirmation's steps: what the restore does, in order (short lines: they
    fit the dialog at 80 columns)."""
    at_timeout = "terminate" if force else "give up"
    return [
        f"plan: {len(plan.links)} backup(s), reflects {stamp(plan.reflects)}",
        f"recover: {human_size(plan.expected_bytes)} into a schema the app cannot see",
        "apply: the incrementals in order, deletions included",
        "validate: rows, digests, RLS, revision (mismatch: stop)",
        f"switch: pause the pool ({timeout:g} s, then {at_timeout}), swap",
        "finish: the old schema kept as replaced (for Roll back)",
    ]


def rollback_steps(timeout: float, force: bool) -> list[str]:
    """The typed confirmation's steps of a roll back."""
    at_timeout = "terminate" if force else "give up"
    return [
        f"pause the pool ({timeout:g} s for clients, then {at_timeout})",
        "swap the newest replaced schema back in (one transaction)",
        "keep the restored schema as replaced; resume the pool",
    ]


def step_line(events: Sequence[StepEvent]) -> str:
    """``✓ plan · … recover · ○ apply …``: where the restore stands in its six steps."""
    phases: dict[str, Phase] = {}
    for event in events:
        if event.step in RESTORE_STEPS and event.phase is not Phase.INFO:
            phases[event.step] = event.phase
    return " · ".join(
        f"{PHASE_MARKS[phases[step]] if step in phases else '○'} {step}" for step in RESTORE_STEPS
    )


def report_lines(report: RestoreReport) -> list[str]:
    """The report of a restore or roll back: the point restored to and the backups used, rows
    per table, the validation, the replaced schema kept, the pool's pause, the durations and
    the status it left."""
    found = [f"{report.action.capitalize()} of {report.tenant}:"]
    if report.plan is not None:
        plan = report.plan
        found.append(f"  reflects    {stamp(plan.reflects)} ({len(plan.links)} backup(s))")
        found += [
            f"    {r.kind.value:<11} {r.started_at:%Y-%m-%d %H:%M}  {r.id}" for r in plan.links
        ]
    if report.validation is not None:
        rows = report.validation.rows
        found.append("  rows        " + ", ".join(f"{t} {n:,}" for t, n in sorted(rows.items())))
        found.append("  validation  ok: " + "; ".join(report.validation.checks))
    if report.replaced_schema:
        found.append(f"  replaced    {report.replaced_schema} (kept until {report.keep_until})")
    if report.switch_window_ms is not None:
        found.append(f"  pool paused {report.switch_window_ms:.0f} ms")
    took = ", ".join(f"{step} {ms / 1000:.1f} s" for step, ms in report.durations_ms.items())
    found.append(f"  took        {took}")
    found.append(f"  status      {report.status_after}")
    return found + [f"  note        {note}" for note in report.notes]


def replaced_cells(replaced: ReplacedSchema, now: datetime) -> tuple[str, ...]:
    """One replaced schema, in REPLACED_COLUMNS order."""
    until = f"{replaced.keep_until:%m-%d %H:%M}"
    return (
        replaced.tenant,
        replaced.schema,
        f"{age(replaced.replaced_at, now)} ago",
        human_size(replaced.bytes),
        f"{until} (expired)" if replaced.expired(now) else until,
    )


def drill_outcome(report: DrillReport) -> tuple[bool, str]:
    """(any failure, one line) of a drill: counts, time and the first failure."""
    failures = report.failures
    took = sum(t.elapsed_ms for t in report.tenants) / 1000
    line = (
        f"{len(report.tenants) - len(failures)} restored and validated, {len(failures)} failed "
        f"({took:.1f} s of restores)"
    )
    if failures:
        line += f" — {failures[0].tenant}: {failures[0].result}"
    return bool(failures), line


def drill_note(record: BackupRecord, now: datetime) -> str | None:
    """What the Backups screen says about the newest full's restore checks when they call for
    attention: its check failed, or it was never restored; None when a restore check passed."""
    if record.verified_at is not None and not record.verified:
        return f"check failed {age(record.verified_at, now)} ago: {record.verify_result}"
    if record.verify_level != RESTORE:
        return "never restored (d runs a drill)"
    return None
