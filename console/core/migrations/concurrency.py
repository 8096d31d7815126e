"""The concurrency range of a migration run, for every front end to check and show (the pool
size check needs a connection: :func:`console.core.migrations.run.check_concurrency`)."""

from __future__ import annotations

from console.core.errors import InvalidInput
from console.core.hints import Field

MAX_CONCURRENCY = 32
DEFAULT_CONCURRENCY = 2  # tenants at once when the operator names no number


def concurrency_in_range(value: int | str) -> int:
    """``value`` (a number, or the text an operator typed) as a concurrency from 1 to
    :data:`MAX_CONCURRENCY`; InvalidInput naming the range otherwise."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_CONCURRENCY:
        got = repr(value) if isinstance(value, str) else value
        raise InvalidInput(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {got}",
            field=Field.CONCURRENCY,
        )
    return number
