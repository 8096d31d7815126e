"""Rows of PgBouncer's admin ``SHOW`` commands, parsed by column name.

Column sets differ between PgBouncer versions (1.18 ... 1.25 add and rename columns), so every
parser reads the columns it knows by name, ignores the others, and defaults the missing ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Row = Mapping[str, Any]


def _int(row: Row, *names: str) -> int:
    """The first present column of ``names`` as an int (0 when none is present or it is NULL)."""
    for name in names:
        value = row.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | Decimal | float):
            return int(value)
        try:
            return int(str(value))
        except ValueError:
            continue
    return 0


def _text(row: Row, name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class PoolRow:
    """One database's pools (summed over users) from ``SHOW POOLS``."""

    database: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_login: int
    maxwait_us: int
    pool_mode: str

    @property
    def maxwait_s(self) -> float:
        """Longest current client wait in seconds."""
        return self.maxwait_us / 1_000_000

    @property
    def servers(self) -> int:
        """Server connections of this database in any state."""
        return self.sv_active + self.sv_idle + self.sv_used + self.sv_login


def parse_pools(rows: Sequence[Row]) -> dict[str, PoolRow]:
    """``SHOW POOLS`` rows summed per database; maxwait is the largest over users."""
    merged: dict[str, PoolRow] = {}
    for row in rows:
        name = _text(row, "database")
        # maxwait (s) + maxwait_us (the sub-second part) since 1.8; older rows have only maxwait.
        wait = _int(row, "maxwait") * 1_000_000 + _int(row, "maxwait_us")
        pool = PoolRow(
            name,
            _int(row, "cl_active"),
            _int(row, "cl_waiting"),
            _int(row, "sv_active"),
            _int(row, "sv_idle"),
            _int(row, "sv_used"),
            _int(row, "sv_login"),
            wait,
            _text(row, "pool_mode"),
        )
        if name in merged:
            old = merged[name]
            pool = PoolRow(
                name,
                old.cl_active + pool.cl_active,
                old.cl_waiting + pool.cl_waiting,
                old.sv_active + pool.sv_active,
                old.sv_idle + pool.sv_idle,
                old.sv_used + pool.sv_used,
                old.sv_login + pool.sv_login,
                max(old.maxwait_us, pool.maxwait_us),
                old.pool_mode or pool.pool_mode,
            )
        merged[name] = pool
    return merged


@dataclass(frozen=True)
class DatabaseRow:
    """One entry of ``SHOW DATABASES``: where it points and its effective limits."""

    name: str
    host: str
    port: int
    database: str
    pool_size: int
    reserve_pool: int
    max_connections: int
    current_connections: int
    paused: bool
    disabled: bool


def parse_databases(rows: Sequence[Row]) -> dict[str, DatabaseRow]:
    """``SHOW DATABASES`` rows by alias name."""
    return {
        _text(row, "name"): DatabaseRow(
            _text(row, "name"),
            _text(row, "host"),
            _int(row, "port"),
            _text(row, "database"),
            _int(row, "pool_size", "default_pool_size"),
            _int(row, "reserve_pool", "reserve_pool_size"),
            _int(row, "max_connections", "max_db_connections"),
            _int(row, "current_connections"),
            bool(_int(row, "paused")),
            bool(_int(row, "disabled")),
        )
        for row in rows
    }


@dataclass(frozen=True)
class StatsRow:
    """Cumulative counters of one database from ``SHOW STATS`` (times in microseconds)."""

    database: str
    xact_count: int
    query_count: int
    xact_time_us: int
    query_time_us: int
    wait_time_us: int
    server_assignments: int | None  # 1.21+; None where the column is missing


def parse_stats(rows: Sequence[Row]) -> dict[str, StatsRow]:
    """``SHOW STATS`` rows by database."""
    return {
        _text(row, "database"): StatsRow(
            _text(row, "database"),
            _int(row, "total_xact_count"),
            _int(row, "total_query_count"),
            _int(row, "total_xact_time"),
            _int(row, "total_query_time"),
            _int(row, "total_wait_time"),
            _int(row, "total_server_assignment_count")
            if "total_server_assignment_count" in row
            else None,
        )
        for row in rows
    }


@dataclass(frozen=True)
class ClientRow:
    """One client connection from ``SHOW CLIENTS``."""

    user: str
    database: str
    state: str
    address: str
    port: int
    connected_at: str
    request_at: str
    application_name: str

    def describe(self) -> str:
        """One line for messages."""
        app = f", {self.application_name}" if self.application_name else ""
        return (
            f"{self.user}@{self.address}:{self.port} ({self.state}{app}, "
            f"last request {self.request_at})"
        )


def parse_clients(rows: Sequence[Row]) -> list[ClientRow]:
    """``SHOW CLIENTS`` rows."""
    return [
        ClientRow(
            _text(row, "user"),
            _text(row, "database"),
            _text(row, "state"),
            _text(row, "addr"),
            _int(row, "port"),
            _text(row, "connect_time"),
            _text(row, "request_time"),
            _text(row, "application_name"),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Limits:
    """The global settings the gauges are drawn against (from ``SHOW CONFIG``)."""

    max_client_conn: int
    max_db_connections: int  # 0 = unlimited
    default_pool_size: int
    reserve_pool_size: int


def parse_config(rows: Sequence[Row]) -> Limits:
    """``SHOW CONFIG`` (key/value rows) -> Limits."""
    values = {_text(row, "key"): row.get("value") for row in rows}
    return Limits(
        _int(values, "max_client_conn"),
        _int(values, "max_db_connections"),
        _int(values, "default_pool_size"),
        _int(values, "reserve_pool_size"),
    )
