"""Parsing PgBouncer's SHOW output by column name, rates from counter deltas, the include file.

Recorded rows stand in for versions this machine does not have (1.18 is Debian bookworm's only
one); the live parsing against a real 1.18 is covered in test_pools.py.
"""

from __future__ import annotations

import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from console.core.errors import ConfigError, InvalidInput
from console.core.pools.aliases import check_pool_size
from console.core.pools.include_file import Alias, IncludeFile
from console.core.pools.log import server_failures
from console.core.pools.rates import RateTracker
from console.core.pools.rows import (
    parse_clients,
    parse_config,
    parse_databases,
    parse_pools,
    parse_stats,
)
from console.core.pools.sync import reconcile

# SHOW POOLS of PgBouncer 1.25 (recorded): cl_cancel_req is gone, load-balance and prepared
# statement columns are new; the parser must take what it knows by name.
POOLS_125 = [
    {
        "database": "tenant_acme",
        "user": "gocommerce_app",
        "cl_active": 7,
        "cl_waiting": 3,
        "cl_active_cancel_req": 0,
        "cl_waiting_cancel_req": 0,
        "sv_active": 5,
        "sv_active_cancel": 0,
        "sv_being_canceled": 0,
        "sv_idle": 1,
        "sv_used": 2,
        "sv_tested": 0,
        "sv_login": 1,
        "maxwait": 2,
        "maxwait_us": 250_000,
        "pool_mode": "transaction",
        "load_balance_hosts": None,
    },
    {
        "database": "tenant_acme",
        "user": "reporting",
        "cl_active": 1,
        "cl_waiting": 0,
        "sv_active": 1,
        "sv_idle": 0,
        "sv_used": 0,
        "sv_login": 0,
        "maxwait": 0,
        "maxwait_us": 900_000,
        "pool_mode": "transaction",
    },
]
# SHOW POOLS of an old version without maxwait_us and sv_login.
POOLS_OLD = [
    {
        "database": "tenant_old",
        "user": "app",
        "cl_active": 1,
        "cl_waiting": 1,
        "cl_cancel_req": 0,
        "sv_active": 1,
        "sv_idle": 0,
        "sv_used": 0,
        "sv_tested": 0,
        "maxwait": 4,
        "pool_mode": "transaction",
    }
]


def test_pools_summed_per_database_whatever_the_column_set() -> None:
    pools = parse_pools(POOLS_125 + POOLS_OLD)
    acme = pools["tenant_acme"]
    assert (acme.cl_active, acme.cl_waiting, acme.sv_active, acme.sv_idle, acme.sv_used) == (
        8,
        3,
        6,
        1,
        2,
    )
    assert acme.sv_login == 1
    assert acme.maxwait_us == 2_250_000  # the larger of the users' waits
    assert acme.maxwait_s == pytest.approx(2.25)
    old = pools["tenant_old"]
    assert (old.maxwait_us, old.sv_login, old.pool_mode) == (4_000_000, 0, "transaction")


def test_databases_stats_clients_and_config_by_name() -> None:
    databases = parse_databases(
        [
            {
                "name": "tenant_acme",
                "host": "10.0.0.5",
                "port": 5432,
                "database": "gocommerce",
                "force_user": None,
                "pool_size": 20,
                "min_pool_size": 0,
                "reserve_pool_size": 5,  # renamed from reserve_pool in 1.24
                "server_lifetime": 3600,  # new in 1.25
                "pool_mode": None,
                "load_balance_hosts": None,
                "max_connections": 50,
                "current_connections": 12,
                "max_client_connections": 0,
                "current_client_connections": 30,
                "paused": 1,
                "disabled": 0,
            }
        ]
    )
    acme = databases["tenant_acme"]
    assert (acme.pool_size, acme.reserve_pool, acme.max_connections) == (20, 5, 50)
    assert (acme.paused, acme.disabled, acme.current_connections) == (True, False, 12)

    stats = parse_stats(
        [
            {
                "database": "tenant_acme",
                "total_server_assignment_count": Decimal(90),
                "total_xact_count": Decimal(100),
                "total_query_count": Decimal(300),
                "total_received": Decimal(1),
                "total_sent": Decimal(2),
                "total_xact_time": Decimal(50_000),
                "total_query_time": Decimal(30_000),
                "total_wait_time": Decimal(9_000),
                "total_client_parse_count": Decimal(0),
            },
            {"database": "legacy", "total_xact_count": 5},
        ]
    )
    assert stats["tenant_acme"].server_assignments == 90
    assert stats["tenant_acme"].query_time_us == 30_000
    assert stats["legacy"].server_assignments is None
    assert stats["legacy"].query_count == 0

    clients = parse_clients(
        [{"type": "C", "user": "app", "database": "tenant_acme", "state": "active", "port": 5}]
    )
    assert clients[0].address == "" and clients[0].state == "active"

    limits = parse_config(
        [
            {"key": "max_client_conn", "value": "1000", "default": "100", "changeable": "yes"},
            {"key": "max_db_connections", "value": "50"},
            {"key": "default_pool_size", "value": "20"},
        ]
    )
    assert (limits.max_client_conn, limits.max_db_connections, limits.reserve_pool_size) == (
        1000,
        50,
        0,
    )


def _stats(xacts: int, queries: int, query_us: int, wait_us: int, assigned: int | None = None):
    row = {
        "database": "tenant_acme",
        "total_xact_count": xacts,
        "total_query_count": queries,
        "total_xact_time": query_us * 2,
        "total_query_time": query_us,
        "total_wait_time": wait_us,
    }
    if assigned is not None:
        row["total_server_assignment_count"] = assigned
    return parse_stats([row])


def test_rates_come_from_deltas_and_a_restart_resets_them() -> None:
    tracker = RateTracker()
    assert tracker.update(10.0, _stats(100, 300, 30_000, 1_000)) == {}  # baseline only
    rates = tracker.update(12.0, _stats(300, 900, 90_000, 5_000))["tenant_acme"]
    assert rates.xact_per_s == pytest.approx(100.0)
    assert rates.query_per_s == pytest.approx(300.0)
    assert rates.avg_query_ms == pytest.approx(60_000 / 600 / 1000)
    assert rates.avg_wait_ms == pytest.approx(4_000 / 200 / 1000)
    # PgBouncer restarted: counters start from zero again -> no (negative) rate this sample
    assert tracker.update(13.0, _stats(10, 30, 3_000, 100)) == {}
    assert tracker.restarts == 1
    again = tracker.update(14.0, _stats(20, 60, 6_000, 200))["tenant_acme"]
    assert again.xact_per_s == pytest.approx(10.0)
    assert again.xact_per_s >= 0


def test_wait_averages_per_server_assignment_where_counted() -> None:
    tracker = RateTracker()
    tracker.update(0.0, _stats(0, 0, 0, 0, assigned=0))
    rates = tracker.update(1.0, _stats(100, 100, 1_000, 8_000, assigned=40))["tenant_acme"]
    assert rates.avg_wait_ms == pytest.approx(8_000 / 40 / 1000)


def test_idle_pool_has_zero_rates_not_errors() -> None:
    tracker = RateTracker()
    tracker.update(0.0, _stats(5, 5, 10, 0))
    rates = tracker.update(1.0, _stats(5, 5, 10, 0))["tenant_acme"]
    assert (rates.xact_per_s, rates.avg_query_ms, rates.avg_wait_ms) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("size", "reserve", "fragment"),
    [
        ("-1", "0", "out of range"),
        ("0", "0", "out of range"),
        ("51", "0", "out of range"),
        ("40", "20", "out of range"),
        ("abc", "0", "not a whole number"),
        ("2.5", "0", "not a whole number"),
        ("10", "-2", "out of range"),
        ("１０", "0", "not a whole number"),
    ],
)
def test_bad_pool_sizes_are_refused_with_the_range(size: str, reserve: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_pool_size(size, reserve, 50)
    assert fragment in caught.value.message
    assert "pool size must be 1-50" in caught.value.message


def test_include_file_is_rewritten_atomically_and_keeps_the_previous(tmp_path: Path) -> None:
    include = IncludeFile(tmp_path / "tenants.ini")
    assert include.read() == {}
    with include.editing() as aliases:
        aliases["tenant_a"] = Alias("tenant_a", "127.0.0.1", 5432, "db", 20, 5)
    first = include.path.read_text()
    assert "tenant_a = host=127.0.0.1 port=5432 dbname=db pool_size=20 reserve_pool=5" in first
    assert first.splitlines()[2] == "[databases]"
    with include.editing() as aliases:
        aliases["tenant_b"] = Alias("tenant_b", "127.0.0.1", 5432, "db", 3, 0)
    assert include.previous.read_text() == first
    assert set(include.read()) == {"tenant_a", "tenant_b"}
    assert oct(include.path.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tenants.ini.")]

    # a failure inside the edit leaves the file as it was
    with pytest.raises(RuntimeError), include.editing() as aliases:
        aliases.clear()
        raise RuntimeError("boom")
    assert set(include.read()) == {"tenant_a", "tenant_b"}


def test_concurrent_edits_never_lose_an_alias(tmp_path: Path) -> None:
    path = tmp_path / "tenants.ini"

    def add(name: str) -> None:
        with IncludeFile(path).editing() as aliases:
            aliases[name] = Alias(name, "h", 1, "d", 1, 0)

    threads = [threading.Thread(target=add, args=(f"tenant_{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(IncludeFile(path).read()) == 20


def test_unreadable_include_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tenants.ini"
    path.write_text("[databases]\ntenant_a = host=h port=x\n")
    with pytest.raises(ConfigError, match=r"tenants.ini:2: .*must be numbers"):
        IncludeFile(path).read()
    path.write_text("[databases]\ntenant_a = host=h auth_user=evil\n")
    with pytest.raises(ConfigError, match="unexpected setting"):
        IncludeFile(path).read()
    with pytest.raises(ConfigError, match="cannot be written"):
        Alias("tenant_a", "h;x", 1, "d", 1, 0).line()
    assert os.access(path, os.R_OK)


def test_log_gives_the_last_server_failure_per_database(tmp_path: Path) -> None:
    """Lines as PgBouncer 1.18 writes them; a routine close after a failure clears it."""
    log = tmp_path / "pgbouncer.log"
    prefix = "2026-12-01 02:35:10.090 UTC [13691] LOG "
    log.write_text(
        prefix
        + "C-0x1: tenant_a/app@127.0.0.1:58500 login attempt: db=tenant_a user=app\n"
        + prefix
        + "S-0x2: tenant_a/app@127.0.0.1:36937 closing because: connect failed (age=0s)\n"
        + prefix
        + "S-0x3: tenant_b/app@127.0.0.1:5432 closing because: connect failed (age=0s)\n"
        + prefix
        + "S-0x4: tenant_b/app@127.0.0.1:5432 closing because: server idle timeout "
        "(age=600s)\n"
        + prefix
        + "C-0x5: tenant_c/app@127.0.0.1:58501 closing because: client close request "
        "(age=0s)\n"
    )
    assert server_failures(log) == {"tenant_a": "server connect failed (127.0.0.1:36937)"}
    assert server_failures(tmp_path / "missing.log") == {}


def test_reconcile_reports_each_changed_field() -> None:
    aliases = {
        "tenant_a": Alias("tenant_a", "h", 1, "d", 20, 5),
        "tenant_gone": Alias("tenant_gone", "h", 1, "d", 20, 5),
    }
    wanted = {
        "tenant_a": Alias("tenant_a", "h", 2, "d", 10, 5),
        "tenant_new": Alias("tenant_new", "h", 2, "d", 20, 5),
    }
    changes = reconcile(aliases, wanted)
    assert aliases == wanted
    assert [c.describe() for c in changes] == [
        "tenant_a: port 1 → 2, pool_size 20 → 10",
        "tenant_gone: removed",
        "tenant_new: added",
    ]
    assert changes[0].as_json() == {
        "alias": "tenant_a",
        "action": "changed",
        "fields": {"port": {"old": 1, "new": 2}, "pool_size": {"old": 20, "new": 10}},
    }
    assert reconcile(aliases, wanted) == []
