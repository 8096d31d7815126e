"""``goconsole backups verify|prune`` as a real subprocess against a real database: output,
JSON, exit codes (1 with a table of failures, 2 for bad usage or read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from test_backup_cli import backups_cli, ok  # noqa: F401 - the CLI fixture and its check


async def test_verify_reports_each_tenant_and_fails_with_a_table(
    backups_cli,  # noqa: F811
    database_dsn: str,
) -> None:
    ok(backups_cli("init"))
    ok(backups_cli("tenants", "provision", "acme", "beta"))
    ok(backups_cli("backups", "run", "--all"))

    checked = ok(backups_cli("backups", "verify", "acme"))
    assert "1 tenant(s) verified at the checksum level: 1 ok, 0 failed" in checked.stdout
    restored = json.loads(
        ok(backups_cli("backups", "verify", "--all", "--restore-test", "--json")).stdout
    )
    assert (restored["level"], restored["verified"], restored["failed"]) == ("restore", 2, 0)
    assert restored["tenants"][0]["restore"]["links"][0]["kind"] == "full"

    su = await asyncpg.connect(database_dsn)
    try:
        location = await su.fetchval(
            "SELECT location FROM public.backups b JOIN public.tenants t ON t.id = b.tenant_id "
            "WHERE t.key = 'beta'"
        )
    finally:
        await su.close()
    Path(location).write_bytes(Path(location).read_bytes()[:-10])
    failed = backups_cli("backups", "verify", "--all")
    assert failed.returncode == 1, failed.stderr
    assert "1 failed" in failed.stdout
    failure_rows = failed.stdout.split("FAILURE\n", 1)[1]
    assert "beta  truncated: " in failure_rows and "acme" not in failure_rows
    assert "1 of 2 tenant(s) failed verification" in failed.stderr


async def test_verify_and_prune_refuse_bad_usage_and_read_only(backups_cli) -> None:  # noqa: F811
    ok(backups_cli("init"))
    for args in (("backups", "verify"), ("backups", "verify", "acme", "--all")):
        result = backups_cli(*args)
        assert result.returncode == 2
        assert "backups verify needs tenant keys or --all" in result.stderr
    for args in (("backups", "verify", "--all"), ("backups", "prune")):
        result = backups_cli("--read-only", *args)
        assert result.returncode == 2 and "read-only mode" in result.stderr
    assert ok(backups_cli("--read-only", "backups", "prune", "--dry-run")).stdout.startswith(
        "would remove 0 backup(s)"
    )


async def test_prune_lists_each_file_and_why(
    backups_cli,  # noqa: F811
    database_dsn: str,
) -> None:
    ok(backups_cli("init"))
    ok(backups_cli("tenants", "provision", "acme"))
    for _ in range(3):
        ok(backups_cli("backups", "run", "acme", "--kind", "full"))
    su = await asyncpg.connect(database_dsn)
    try:
        rows = await su.fetch("SELECT id, location FROM public.backups ORDER BY started_at")
        for row, days in zip(rows, (50, 40, 0), strict=True):
            await su.execute(
                "UPDATE public.backups SET covers_until = now() - make_interval(days => $2) "
                "WHERE id = $1",
                row["id"],
                days,
            )
    finally:
        await su.close()
    oldest = Path(rows[0]["location"])

    dry = ok(backups_cli("backups", "prune", "--dry-run"))
    assert f"acme full {rows[0]['id']}: full of " in dry.stdout
    assert "older than the 30-day full retention" in dry.stdout
    assert f"  would remove {oldest}" in dry.stdout
    assert "would remove 1 backup(s) of 1 tenant(s)" in dry.stdout
    assert oldest.exists()

    pruned = ok(backups_cli("backups", "prune"))
    assert f"  removed {oldest}\n" in pruned.stdout
    assert f"  removed {oldest.with_name(oldest.name.split('.')[0] + '.manifest.json')}" in (
        pruned.stdout
    )
    assert not oldest.exists() and Path(rows[1]["location"]).exists()
    again = json.loads(ok(backups_cli("backups", "prune", "--json")).stdout)
    assert again["removed"] == [] and again["failures"] == {}
