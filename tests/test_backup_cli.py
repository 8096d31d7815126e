"""``goconsole backups run|list|show`` as a real subprocess against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from helpers import backup_config, make_age_key


@pytest.fixture
def backups_cli(database_dsn: str, tmp_path: Path):
    """Runs the CLI with a config of ``[backup]`` lines (default: encrypted to a new key)."""
    backup_dir = tmp_path / "backups"
    default = backup_config(backup_dir, make_age_key(tmp_path))

    def call(*args: str, backup: str = default) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "backups-cli.toml"
        config.write_text(backup)
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "console",
                "--config",
                str(config),
                "--dsn",
                database_dsn,
                *args,
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("GOCONSOLE_")},
            timeout=120,
            check=False,
        )

    call.backup_dir = backup_dir  # type: ignore[attr-defined]
    return call


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


async def test_run_list_show(backups_cli, database_dsn: str) -> None:
    ok(backups_cli("init"))
    ok(backups_cli("tenants", "provision", "acme", "beta"))
    first = ok(backups_cli("backups", "run", "--all", "--concurrency", "2"))
    assert "2 tenant(s): 2 backed up, 0 failed" in first.stdout
    assert "full: no full backup yet" in first.stdout
    assert "tenants" in first.stderr and "MB/s" in first.stderr and "eta" in first.stderr

    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute("UPDATE tenant_acme.schema_version SET version_num = 'moved_on'")
    finally:
        await conn.close()
    second = ok(backups_cli("backups", "run", "acme", "beta", "--json"))
    report = json.loads(second.stdout)
    kinds = {t["tenant"]: (t["backup"]["kind"], t["full_because"]) for t in report["tenants"]}
    assert kinds["beta"] == ("incremental", None)
    assert kinds["acme"][0] == "full" and "tree revision changed" in kinds["acme"][1]
    assert "full backup: the tree revision changed" in second.stderr  # the INFO event

    listed = json.loads(ok(backups_cli("backups", "list", "acme", "--json")).stdout)
    assert [b["kind"] for b in listed] == ["full", "full"]
    table = ok(backups_cli("backups", "list")).stdout
    assert "4 backup(s)" in table and "incremental" in table

    shown = ok(backups_cli("backups", "show", listed[0]["id"]))
    assert "TABLE" in shown.stdout and "customers" in shown.stdout and "sha256" in shown.stdout
    as_json = json.loads(ok(backups_cli("backups", "show", listed[0]["id"], "--json")).stdout)
    assert as_json["manifest"]["id"] == listed[0]["id"]

    missing = backups_cli("backups", "show", "not-an-id")
    assert missing.returncode == 2 and "is not a backup id" in missing.stderr
    neither = backups_cli("backups", "run")
    assert neither.returncode == 2 and "tenant keys or --all" in neither.stderr


async def test_refusals_and_failures(backups_cli, tmp_path: Path) -> None:
    ok(backups_cli("init"))
    ok(backups_cli("tenants", "provision", "acme", "beta"))
    bare = f'[backup]\ndir = "{backups_cli.backup_dir}"\n'
    refused = backups_cli("backups", "run", "--all", backup=bare)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "backup.recipients" in refused.stderr
    assert refused.stdout == ""

    garbage = tmp_path / "recipients.txt"
    garbage.write_text("age1notakey\n")
    broken = bare + f'recipients_file = "{garbage}"\n'
    failed = backups_cli("backups", "run", "--all", backup=broken)
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert lines[0].startswith("2 tenant(s): 0 backed up, 2 failed; 0 B stored")
    header = next(i for i, line in enumerate(lines) if line.startswith("KEY"))
    assert lines[header].split() == ["KEY", "RESULT", "REASON"]
    assert [line.split()[:2] for line in lines[header + 1 :]] == [
        ["acme", "FAILED"],
        ["beta", "FAILED"],
    ]
    assert f"backup.recipients_file {garbage} line 1" in failed.stdout
    assert "2 of 2 tenant(s) not backed up" in failed.stderr.splitlines()[-1]
