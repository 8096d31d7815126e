"""Schedule expressions as the ``[schedule]`` settings take them: 5-field cron (minute hour
day-of-month month day-of-week) or Quartz with seconds first (second minute hour day-of-month
month day-of-week [year], ``?`` for "any"). What is wrong with one, in words, and its fields in
one form the scheduler builds its triggers from."""

from __future__ import annotations

from dataclasses import dataclass

ACCEPTED_FORMS = (
    'a 5-field cron expression (minute hour day month weekday, e.g. "0 2 * * *") or a Quartz '
    'one with seconds first (second minute hour day month weekday [year], e.g. "0 0 2 * * ?")'
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_NAMES = {name: i for i, name in enumerate(_MONTHS, 1)}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    any_mark: bool = False  # Quartz's "?" (no specific value) is allowed


_SECOND = _Field("second", 0, 59, {})
_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_CRON_FIELDS = (
    _MINUTE,
    _HOUR,
    _Field("day of month", 1, 31, {}),
    _MONTH,
    _Field("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
_QUARTZ_FIELDS = (
    _SECOND,
    _MINUTE,
    _HOUR,
    _Field("day of month", 1, 31, {}, any_mark=True),
    _MONTH,
    _Field("day of week", 1, 7, {name: i for i, name in enumerate(_DAYS, 1)}, any_mark=True),
    _Field("year", 1970, 2099, {}),
)


@dataclass(frozen=True)
class CronFields:
    """One schedule in one form: each field as cron text (``*`` for any), day of week as day
    names (``sun,mon``) whatever numbering the expression used."""

    second: str
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str
    year: str = "*"


def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a schedule expression of an accepted form, or None."""
    fields = _fields_of(expr)
    if fields is None:
        return f"must be {ACCEPTED_FORMS}"
    for text, spec in zip(expr.split(), fields, strict=True):
        problem = _field_problem(text, spec)
        if problem:
            return problem
    return None


def parse_schedule(expr: str) -> CronFields:
    """The fields of a valid ``expr`` (ValueError naming the problem otherwise)."""
    problem = cron_problem(expr)
    fields = _fields_of(expr)
    if problem or fields is None:
        raise ValueError(problem)
    parts = [("*" if p == "?" else p.lower()) for p in expr.split()]
    quartz = len(fields) > len(_CRON_FIELDS)
    if not quartz:
        parts = ["0", *parts]
    days = _weekdays(parts[5], fields[5 if quartz else 4], first=1 if quartz else 0)
    second, minute, hour, day, month = parts[:5]
    return CronFields(second, minute, hour, day, month, days, parts[6] if len(parts) == 7 else "*")


def _fields_of(expr: str) -> tuple[_Field, ...] | None:
    count = len(expr.split())
    return _CRON_FIELDS if count == 5 else _QUARTZ_FIELDS[:count] if count in (6, 7) else None


def _field_problem(text: str, spec: _Field) -> str | None:
    if text == "?" and spec.any_mark:
        return None
    for item in text.split(","):
        base, slash, step = item.partition("/")
        if slash and _number(step) <= 0:
            return f"the {spec.name} field {text!r} has an invalid step"
        if base == "*":
            continue
        bounds = [spec.names.get(b.lower(), _number(b)) for b in base.split("-")]
        if len(bounds) > 2 or not all(spec.low <= b <= spec.high for b in bounds):
            return f"the {spec.name} field {text!r} must use values {spec.low}-{spec.high}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"the {spec.name} field {text!r} has a descending range"
    return None


def _weekdays(text: str, spec: _Field, first: int) -> str:
    """A valid day-of-week field as day names (``*`` for every day); ``first`` is Sunday's
    number (0 in cron, where 7 is Sunday too; 1 in Quartz)."""
    days: set[int] = set()
    for item in text.split(","):
        base, _slash, step = item.partition("/")
        if base == "*":
            low, high = spec.low, spec.high
        else:
            bounds = [spec.names.get(b, _number(b)) for b in base.split("-")]
            low, high = bounds[0], bounds[-1]
            if step and len(bounds) == 1:  # N/STEP: from N to the end
                high = spec.high
        days.update((n - first) % 7 for n in range(low, high + 1, int(step or 1)))
    return "*" if len(days) == 7 else ",".join(_DAYS[d] for d in sorted(days))


def _number(text: str) -> int:
    """A plain ASCII number, or -1."""
    return int(text) if text.isascii() and text.isdigit() else -1
