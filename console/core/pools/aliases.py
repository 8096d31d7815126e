"""What a tenant's PgBouncer alias may be: its pool size and reserve within the limits, and
the server it points at."""

from __future__ import annotations

from dataclasses import dataclass

from console.config import PgBouncerSettings
from console.core.db import ConnectionSpec
from console.core.errors import (
    InvalidInput,
)
from console.core.pools.rows import (
    Limits,
)


def check_pool_size(size: object, reserve: object, limit: int) -> tuple[int, int]:
    """``(size, reserve)`` as ints within the allowed range, or InvalidInput naming it."""
    rule = f"pool size must be 1-{limit}, reserve 0-{limit}, together at most {limit}"
    values = []
    for label, value in (("pool size", size), ("reserve", reserve)):
        text = str(value).strip()
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise InvalidInput(f"{label} {value!r} is not a whole number: {rule}")
        values.append(int(text))
    pool, spare = values
    if not 1 <= pool <= limit or not 0 <= spare <= limit or pool + spare > limit:
        raise InvalidInput(f"pool size {pool} with reserve {spare} is out of range: {rule}")
    return pool, spare


def size_limit(settings: PgBouncerSettings, limits: Limits) -> int:
    """Largest pool size + reserve allowed: ``max_pool_size``, and PgBouncer's
    ``max_db_connections`` when that is set and lower."""
    live = limits.max_db_connections
    return min(settings.max_pool_size, live) if live > 0 else settings.max_pool_size


@dataclass(frozen=True)
class ServerTarget:
    """Where tenant aliases send PgBouncer: the PostgreSQL the console manages."""

    host: str
    port: int
    dbname: str

    @classmethod
    def resolve(cls, settings: PgBouncerSettings, spec: ConnectionSpec) -> ServerTarget:
        """Configured ``server_*`` values, else the cluster DSN's host, port and database."""
        params = spec.params()
        return cls(
            settings.server_host or params.get("host") or "127.0.0.1",
            settings.server_port or int(params.get("port") or 5432),
            settings.server_dbname or params.get("dbname") or params.get("user") or "postgres",
        )
