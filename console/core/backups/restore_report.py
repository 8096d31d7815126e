"""What a restore, a rollback and a drill report: the front ends print these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.core.backups.rebuild import Validation
from console.core.backups.recovery import RestorePlan
from console.core.backups.restore import LinkTiming


@dataclass
class RestoreReport:
    """One restore (or rollback) of one tenant."""

    tenant: str
    action: str
    plan: RestorePlan | None = None
    recovery_schema: str | None = None
    replaced_schema: str | None = None
    restored_schema: str | None = None
    status_after: str | None = None
    links: list[LinkTiming] = field(default_factory=list)
    validation: Validation | None = None
    durations_ms: dict[str, float] = field(default_factory=dict)
    switch_window_ms: float | None = None
    keep_until: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "action": self.action,
            "plan": self.plan.as_json() if self.plan else None,
            "recovery_schema": self.recovery_schema,
            "replaced_schema": self.replaced_schema,
            "restored_schema": self.restored_schema,
            "status_after": self.status_after,
            "links": [t.as_json() for t in self.links],
            "validation": self.validation.as_json() if self.validation else None,
            "durations_ms": {k: round(v, 1) for k, v in self.durations_ms.items()},
            "switch_window_ms": (
                round(self.switch_window_ms, 1) if self.switch_window_ms is not None else None
            ),
            "keep_until": self.keep_until,
            "notes": self.notes,
        }

    def as_text(self) -> str:
        """Human-readable report."""
        lines = [f"{self.action.capitalize()} of tenant {self.tenant}"]
        if self.plan is not None:
            lines += plan_lines(self.plan)
        if self.validation is not None:
            lines.append(
                "  rows        "
                + ", ".join(
                    f"{table} {rows:,}" for table, rows in sorted(self.validation.rows.items())
                )
            )
            lines.append("  validation  ok: " + "; ".join(self.validation.checks))
        if self.replaced_schema:
            lines.append(f"  replaced    {self.replaced_schema} (kept until {self.keep_until})")
        if self.switch_window_ms is not None:
            lines.append(f"  pool paused {self.switch_window_ms:.0f} ms")
        lines.append(
            "  durations   " + ", ".join(f"{k} {v:.0f} ms" for k, v in self.durations_ms.items())
        )
        lines.append(f"  status      {self.status_after}")
        lines += [f"  note        {n}" for n in self.notes]
        return "\n".join(lines)


def plan_lines(plan: RestorePlan) -> list[str]:
    """The plan as indented report lines."""
    target = plan.target.isoformat() if plan.target else f"backup {plan.backup_id}"
    reflects = plan.reflects.isoformat() if plan.reflects else "unknown"
    distance = f" ({plan.distance_s:,.0f} s before the target)" if plan.distance_s else ""
    lines = [f"  target      {target}", f"  reflects    {reflects}{distance}", "  backups"]
    for record in plan.links:
        mark = (
            "unverified: checked first"
            if record.id in plan.unchecked
            else (f"verified ({record.verify_level})" if record.verified else "not verified")
        )
        lines.append(
            f"    {record.id}  {record.kind.value:<11} {record.covers_until:%Y-%m-%d %H:%M:%S}"
            f"  {mark}"
        )
    lines.append(f"  size        {plan.expected_bytes:,} bytes to read")
    lines.append(f"  pool        {plan.pool}")
    if plan.migrate_from:
        lines.append(f"  migrate     from {plan.migrate_from} to {plan.head_revision}")
    if plan.recreate:
        lines.append("  re-create   the schema of an ARCHIVED tenant; left INACTIVE")
    lines += [f"  note        {n}" for n in plan.notes]
    return lines


@dataclass
class DrillResult:
    """One tenant's drill."""

    tenant: str
    result: str
    links: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the drill passed."""
        return self.result == "ok"

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "result": self.result,
            "links": self.links,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "rows": self.rows,
        }


@dataclass
class DrillReport:
    """Every drilled tenant."""

    tenants: list[DrillResult] = field(default_factory=list)

    @property
    def failures(self) -> list[DrillResult]:
        """Tenants whose drill failed."""
        return [t for t in self.tenants if not t.ok]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "total": len(self.tenants),
            "failed": len(self.failures),
            "tenants": [t.as_json() for t in self.tenants],
        }
