"""Schema statistics history: one collection for every tenant from one catalog pass, retention,
the week's growth against an injected clock, and ``goconsole stats``, on real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from test_cli import one_error_line, run_cli

from console.config import Settings, StatsSettings, parse_settings
from console.core.errors import ConfigError, InvalidInput, NotFound, ReadOnlyMode
from console.core.service import ConsoleService
from console.core.stats.collect import collect

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


async def grow(su: asyncpg.Connection, key: str, rows: int) -> None:
    """Add ``rows`` categories to the tenant and refresh its planner estimates."""
    await su.execute(
        f"INSERT INTO tenant_{key}.categories (name) "
        f"SELECT 'category ' || g || ' ' || gen_random_uuid() FROM generate_series(1, {rows}) g"
    )
    await su.execute(f"ANALYZE tenant_{key}.categories")


async def catalog_figures(su: asyncpg.Connection, key: str) -> tuple[int, int, int, dict]:
    """What the catalog says of one tenant's schema, asked the slow way (one schema)."""
    rows = await su.fetch(
        "SELECT c.relname, greatest(c.reltuples, 0)::int8 AS rows, "
        "pg_total_relation_size(c.oid) AS bytes FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_version'",
        f"tenant_{key}",
    )
    return (
        len(rows),
        sum(r["bytes"] for r in rows),
        sum(r["rows"] for r in rows),
        {r["relname"]: r["rows"] for r in rows},
    )


async def collect_counting(dsn: str, now: datetime) -> int:
    """Run one collection on a connection of its own; how many statements it sent."""
    conn = await asyncpg.connect(dsn)
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    try:
        await collect(conn, now, 30)
    finally:
        await conn.close()
    return len([s for s in statements if s.split()[0].upper() not in ("BEGIN", "COMMIT")])


async def test_one_collection_holds_every_tenant_as_the_catalog_says(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    for key in ("acme", "beta"):
        await service.provision(key)
    await grow(su, "acme", 500)
    statements_for_two = await collect_counting(database_dsn, NOW - timedelta(hours=2))
    for key in ("gamma", "delta", "omega"):
        await service.provision(key)
    await su.execute("DROP SCHEMA tenant_omega CASCADE")  # registered, schema gone: no row
    assert await collect_counting(database_dsn, NOW - timedelta(hours=1)) == statements_for_two

    run = await service.stats.collect(now=NOW)
    assert (run.collected_at, run.tenants) == (NOW, 4)
    rows = {r.key: r for r in await service.stats.top(10)}
    assert sorted(rows) == ["acme", "beta", "delta", "gamma"]
    assert run.total_bytes == sum(r.total_bytes for r in rows.values())
    for key, row in rows.items():
        tables, total, estimated, _ = await catalog_figures(su, key)
        assert (row.tables, row.total_bytes, row.estimated_rows) == (tables, total, estimated)
        assert row.collected_at == NOW
    assert next(iter(rows)) == "acme"  # largest first
    assert rows["acme"].estimated_rows >= 500

    detail = await service.stats.top(1, key="acme")
    assert [r.key for r in detail] == ["acme"]
    assert detail[0].table_rows == (await catalog_figures(su, "acme"))[3]
    assert detail[0].table_rows["categories"] >= 500
    assert rows["acme"].table_rows is None  # only asked for one tenant

    again = await service.stats.collect(now=NOW)  # the same stamp: nothing new
    assert again.tenants == 0 and again.total_bytes == run.total_bytes


async def test_retention_removes_what_is_older_than_its_days(
    make_service, settings: Settings, service: ConsoleService, su: asyncpg.Connection
) -> None:
    await service.provision("acme")
    kept = await make_service(settings=dataclasses.replace(settings, stats=StatsSettings(10)))
    for days in (12, 11, 9, 2):
        assert (await kept.stats.collect(now=NOW - timedelta(days=days))).pruned == 0
    run = await kept.stats.collect(now=NOW)
    assert run.pruned == 2  # 12 and 11 days old; 9 days old stays
    stamps = await su.fetch("SELECT collected_at FROM public.schema_stats ORDER BY 1")
    assert [r[0] for r in stamps] == [NOW - timedelta(days=d) for d in (9, 2, 0)]


async def test_growth_is_the_change_since_a_week_before(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    for key in ("acme", "beta", "gamma"):
        await service.provision(key)
    await service.stats.collect(now=NOW - WEEK - timedelta(minutes=30))
    await grow(su, "beta", 3000)
    await grow(su, "acme", 200)
    await service.provision("delta")  # new this week: no baseline
    await service.stats.collect(now=NOW - timedelta(days=2))
    await service.stats.collect(now=NOW)

    growing = await service.stats.top(10, by="growth", now=NOW + timedelta(minutes=5))
    assert [r.key for r in growing] == ["beta", "acme", "gamma", "delta"]
    then = {r.key: r for r in await service.stats.top(10, now=NOW - WEEK)}
    for row in growing[:3]:
        assert row.growth_bytes == row.total_bytes - then[row.key].total_bytes
        assert row.baseline_at == NOW - WEEK - timedelta(minutes=30)
    assert growing[0].growth_bytes > growing[1].growth_bytes > 0
    assert growing[2].growth_bytes == 0
    assert growing[3].growth_bytes is None and growing[3].baseline_at is None
    assert (await service.stats.growth(NOW))["beta"] == growing[0]

    # Two days ago, no figures were a week older: no growth for anyone.
    earlier = await service.stats.growth(NOW - timedelta(days=2))
    assert {r.growth_bytes for r in earlier.values()} == {None}
    # After ten days without collections the runs before are more than a day off the mark.
    await service.stats.collect(now=NOW + timedelta(days=10))
    later = await service.stats.growth(NOW + timedelta(days=10))
    assert {r.growth_bytes for r in later.values()} == {None}
    assert (await service.stats.growth(NOW + timedelta(days=9)))["beta"] == growing[0]
    # Before the first collection there is nothing.
    assert await service.stats.growth(NOW - timedelta(days=30)) == {}


async def test_bad_requests_and_read_only(make_service, service: ConsoleService) -> None:
    await service.provision("acme")
    with pytest.raises(
        InvalidInput, match=r"the number of tenants to list must be 1 to 100000, got 0"
    ):
        await service.stats.top(0)
    with pytest.raises(InvalidInput, match=r"tenants are ordered by size or growth, not 'speed'"):
        await service.stats.top(5, by="speed")
    with pytest.raises(NotFound):
        await service.stats.top(5, key="nobody")
    viewer = await make_service(read_only=True)
    with pytest.raises(ReadOnlyMode, match="schema statistics collection refused"):
        await viewer.stats.collect(now=NOW)
    assert await service.stats.growth(NOW) == {}


def test_retention_must_cover_a_week() -> None:
    with pytest.raises(ConfigError, match=r"stats.retention_days must be at least 8.*got 7"):
        parse_settings({"stats": {"retention_days": 7}}, "test.toml")
    assert parse_settings({"stats": {"retention_days": 8}}, "t").stats.retention_days == 8


async def test_stats_command(database_dsn: str, tmp_path: Path, settings: Settings) -> None:
    backups = tmp_path / "backups"

    def cli(*args: str):
        return run_cli(*args, dsn=database_dsn, backup_dir=backups)

    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme", "beta").returncode == 0
    empty = cli("stats")
    assert empty.returncode == 0, empty.stderr
    assert "no schema statistics collected yet" in empty.stdout

    async with ConsoleService(settings, dsn=database_dsn) as service:
        await service.stats.collect(now=datetime.now(UTC) - WEEK - timedelta(minutes=1))
        conn = await asyncpg.connect(database_dsn)
        try:
            await grow(conn, "beta", 1000)
        finally:
            await conn.close()
        await service.stats.collect()

    listed = cli("stats", "--top", "1", "--by", "growth", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["key"] for r in rows] == ["beta"] and rows[0]["growth_bytes"] > 0
    table = cli("stats")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    header, beta, acme = (re.split(r"\s{2,}", line) for line in lines[:3])
    assert header[:3] == ["KEY", "SIZE", "GROWTH 7D"]
    assert (beta[0], beta[2][0], acme[0], acme[2]) == ("beta", "+", "acme", "0 B")
    assert [line.split()[0] for line in lines[1:3]] == ["beta", "acme"]
    one = cli("stats", "beta")
    assert one.returncode == 0, one.stderr
    assert "categories" in one.stdout and "beta" in one.stdout
    one_json = json.loads(cli("stats", "beta", "--json").stdout)
    assert one_json["table_rows"]["categories"] >= 1000

    for args, message in (
        (("stats", "--top", "0"), "--top: the number of tenants to list must be 1 to 100000"),
        (("stats", "--by", "speed"), "--by: invalid choice: 'speed'"),
        (("stats", "acme", "--top", "3"), "stats KEY shows one tenant"),
        (("stats", "nobody"), "nobody"),
        (("stats", "Bad-Key"), "Bad-Key"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in one_error_line(result)
