"""Five-field cron expressions (minute hour day-of-month month day-of-week), as the schedule
settings take them: what is wrong with one, in words."""

from __future__ import annotations

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i for i, name in enumerate(_MONTHS, 1)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)


def cron_problem(expr: str) -> str | None:
    """Why a 5-field cron expression is invalid (items: *, N, N-M, each with /STEP), or None."""
    for text, (field_name, low, high, names) in zip(expr.split(), _CRON_FIELDS, strict=True):
        for item in text.split(","):
            base, slash, step = item.partition("/")
            if slash and _cron_number(step) <= 0:
                return f"the {field_name} field {text!r} has an invalid step"
            if base == "*":
                continue
            bounds = [names.get(b.lower(), _cron_number(b)) for b in base.split("-")]
            if len(bounds) > 2 or not all(low <= b <= high for b in bounds):
                return f"the {field_name} field {text!r} must use values {low}-{high}"
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                return f"the {field_name} field {text!r} has a descending range"
    return None


def _cron_number(text: str) -> int:
    """A plain ASCII number, or -1."""
    return int(text) if text.isascii() and text.isdigit() else -1
