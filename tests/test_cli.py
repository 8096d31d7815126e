"""The headless CLI, run as a real subprocess against a real database."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest
from helpers import backup_config, make_age_key

from console.config import load_settings
from console.core.migrations.tree import head_revision
from console.devenv.pgbouncer import pgbouncer_binary


def run_cli(
    *args: str, dsn: str | None, backup_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m console [--dsn DSN] ARGS`` with backups going to ``backup_dir``, encrypted to
    an age key generated beside it."""
    config = backup_dir.parent / "cli-config.toml"
    if not config.exists():
        config.write_text(backup_config(backup_dir, make_age_key(backup_dir.parent)))
    prefix = ["--config", str(config)] + (["--dsn", dsn] if dsn else [])
    return subprocess.run(
        [sys.executable, "-m", "console", *prefix, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command: exactly one line, starting with the program name."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("goconsole: error: ")
    return lines[0]


@pytest.fixture
def cli(database_dsn: str, tmp_path: Path):
    backups = tmp_path / "backups"

    def call(*args: str, dsn: str | None = database_dsn, **kw: object):
        return run_cli(*args, dsn=dsn, backup_dir=backups, **kw)

    return call


async def status_of(dsn: str, key: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        value: str | None = await conn.fetchval(
            "SELECT status::text FROM public.tenants WHERE key = $1", key
        )
        return value
    finally:
        await conn.close()


async def test_init_provision_list_show_audit(cli, database_dsn: str) -> None:
    first = cli("init")
    assert first.returncode == 0, first.stderr
    # The role is cluster-wide: an earlier test on the same cluster may have created it.
    assert re.search(r"role gocommerce_app (created|verified)", first.stdout), first.stdout
    again = cli("init")
    assert again.returncode == 0, again.stderr
    assert "gocommerce_app verified" in again.stdout

    made = cli("tenants", "provision", "acme", "--name", "Acme Corp")
    assert made.returncode == 0, made.stderr
    assert "tenant acme is ACTIVE" in made.stdout
    assert "✓ verify" in made.stderr and "[clone]" in made.stderr

    listed = cli("tenants", "list", "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert [(r["key"], r["status"], r["display_name"]) for r in rows] == [
        ("acme", "ACTIVE", "Acme Corp")
    ]
    assert json.loads(cli("tenants", "list", "--status", "inactive", "--json").stdout) == []

    shown = json.loads(cli("tenants", "show", "acme", "--json").stdout)
    tables = {t["table"]: t for t in shown["tables"]}
    assert set(tables) == {
        "categories",
        "products",
        "customers",
        "orders",
        "order_items",
        "deletion_log",
    }
    assert all(t["rls_enabled"] and t["rls_forced"] and t["policies"] == 1 for t in tables.values())
    assert shown["revision"] == head_revision("tenant")

    text = cli("tenants", "show", "acme")
    assert "tenant_acme" in text.stdout and "customers" in text.stdout

    audit = json.loads(cli("audit", "acme", "--json").stdout)
    assert [a["action_type"] for a in audit][:5] == [
        "provision.activate",
        "provision.verify",
        "provision.init_data",
        "provision.schema",
        "provision.register",
    ]
    assert json.loads(cli("audit", "--limit", "2", "--json").stdout).__len__() == 2


async def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli, database_dsn: str) -> None:
    assert cli("init").returncode == 0
    for key in ("Acme", "a;drop table x", "ünï", "a" * 57, "public", "", "9lives"):
        result = cli("tenants", "provision", key)
        assert result.returncode == 2, (key, result.stderr)
        assert "tenant key" in one_error_line(result)
    assert cli("tenants", "provision", "acme").returncode == 0
    dup = cli("tenants", "provision", "acme")
    assert dup.returncode == 2
    assert "already in use" in one_error_line(dup)

    cases = [
        (("tenants", "list", "--status", "sleeping"), "unknown status 'sleeping'"),
        (("audit", "--limit", "0"), "--limit must be between"),
        (("tenants", "offboard", "acme"), "pass --yes"),
        (("tenants", "deactivate", "acme", "--timeout", "-1", "--yes"), "--timeout"),
        (("tenants", "frobnicate"), "invalid choice"),
        (("tenants", "show", "nobody"), "no tenant with key 'nobody'"),
        (("tenants", "reactivate", "acme"), None),
    ]
    for args, needle in cases:
        result = cli(*args)
        line = one_error_line(result)
        if needle is None:  # reactivating an ACTIVE tenant: refused state, exit 1
            assert result.returncode == 1 and "needs INACTIVE" in line
        else:
            assert result.returncode == 2, (args, result.stderr)
            assert needle in line, line
    assert await status_of(database_dsn, "acme") == "ACTIVE"
    assert await status_of(database_dsn, "nobody") is None


async def test_read_only_refuses_every_mutation(cli, database_dsn: str) -> None:
    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme").returncode == 0
    before = json.loads(cli("audit", "--json", "--limit", "1000").stdout)
    for args in (
        ("tenants", "provision", "beta"),
        ("tenants", "deactivate", "acme", "--yes"),
        ("tenants", "offboard", "acme"),
        ("init",),
    ):
        result = cli("--read-only", *args)
        assert result.returncode == 2, result.stderr
        assert "read-only mode" in one_error_line(result)
    assert len(json.loads(cli("audit", "--json", "--limit", "1000").stdout)) == len(before)
    assert await status_of(database_dsn, "beta") is None


async def test_deactivate_reactivate_offboard_roundtrip(cli, database_dsn: str) -> None:
    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme").returncode == 0
    down = cli("tenants", "deactivate", "acme", "--yes", "--timeout", "2")
    assert down.returncode == 0, down.stderr
    assert "tenant acme is INACTIVE" in down.stdout
    assert cli("tenants", "reactivate", "acme").stdout.strip() == "tenant acme is ACTIVE"
    off = cli("tenants", "offboard", "acme", "--yes", "--json")
    assert off.returncode == 0, off.stderr
    report = json.loads(off.stdout)
    dump = Path(report["backup"]["location"])
    assert dump.is_file() and report["backup"]["verify_result"] == "ok"
    assert Path(report["audit_export"]["path"]).is_file()
    assert Path(report["report"]).with_suffix(".txt").is_file()
    assert await status_of(database_dsn, "acme") == "ARCHIVED"


async def test_json_output_keeps_its_keys_in_their_order(cli) -> None:
    """``--json`` of the commands whose results are typed dataclasses prints the keys it printed
    when they were dicts, in the same order (scripts may rely on either)."""
    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme").returncode == 0
    assert cli("tenants", "deactivate", "acme", "--yes").returncode == 0  # backs it up first
    assert cli("migrate", "all").returncode == 0

    shown = json.loads(cli("tenants", "show", "acme", "--json").stdout)
    assert list(shown) == ["tenant", "revision", "tables", "backups", "audit"]
    assert list(shown["tenant"]) == [
        *("id", "key", "schema_name", "display_name", "status", "cluster", "created_at"),
        *("updated_at", "config"),
    ]
    assert {tuple(t) for t in shown["tables"]} == {
        ("table", "estimated_rows", "bytes", "rls_enabled", "rls_forced", "policies")
    }
    assert [list(b) for b in shown["backups"]] == [
        ["kind", "status", "started_at", "bytes", "sha256", "location", "verify_result"]
    ]
    assert {tuple(a) for a in shown["audit"]} == {
        (
            *("id", "tenant", "action_type", "action_timestamp", "actor", "actor_host"),
            *("actor_address", "details"),
        )
    }

    status = json.loads(cli("migrate", "status", "--json").stdout)
    assert list(status) == ["head", "behind", "unknown", "revisions"]
    assert [list(r) for r in status["revisions"]] == [["revision", "tenants", "at_head", "state"]]
    assert status["revisions"][0]["state"] == "head" and status["revisions"][0]["at_head"]

    runs = json.loads(cli("migrate", "runs", "--json").stdout)
    assert [list(r) for r in runs] == [
        [
            *("id", "started_at", "finished_at", "target", "status", "tenants", "succeeded"),
            *("failed", "skipped_busy", "pending"),
        ]
    ]
    assert (runs[0]["status"], runs[0]["tenants"]) == ("succeeded", 0)  # all at head already


async def test_unreachable_cluster_and_bad_config(cli, tmp_path: Path) -> None:
    down = cli("tenants", "list", dsn="postgresql://postgres@127.0.0.1:1/nowhere")
    assert down.returncode == 1
    line = one_error_line(down)
    assert "cannot connect to postgres@127.0.0.1:1/nowhere" in line

    bad = tmp_path / "bad.toml"
    bad.write_text("[clusters.primary]\ndsn = 5\n")
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(bad), "tenants", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(bad) in line and "clusters.primary.dsn must be a string" in line

    # No command opens the console; an unreachable cluster exits 1 with one line, no traceback,
    # as every command does.
    no_command = subprocess.run(
        [sys.executable, "-m", "console", "--dsn", "postgresql://postgres@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert no_command.returncode == 1
    assert "cannot connect to postgres@127.0.0.1:1/x" in one_error_line(no_command)


def test_console_and_commands_share_the_unreachable_exit_code(cli) -> None:
    # A server that accepts TCP connections but never answers: the connect timeout decides.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        dsn = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/x?connect_timeout=1"
        for args in (("tui",), ("tenants", "list")):
            result = cli(*args, dsn=dsn)
            assert result.returncode == 1, (args, result.stderr)
            line = one_error_line(result)
            assert "cannot connect to postgres@127.0.0.1" in line, line
            assert "no answer within 1 s (connect_timeout)" in line, line


def test_console_without_a_terminal_says_so(cli) -> None:
    assert cli("init").returncode == 0
    result = cli("tui")
    assert result.returncode == 2
    assert "needs a terminal" in one_error_line(result)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "goconsole"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "tenants" in result.stdout and "demo" in result.stdout


def test_version_is_answered_from_package_metadata_without_the_core() -> None:
    expected = f"goconsole {importlib.metadata.version('goconsole')}\n"
    script = Path(sys.executable).parent / "goconsole"
    for argv in ([str(script), "--version"], [str(script), "--debug", "--version"]):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert (result.returncode, result.stdout, result.stderr) == (0, expected, ""), argv
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "console", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.stdout == expected
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.stderr.splitlines()}
    assert "console.entry" in loaded
    assert not loaded & {"console.cli", "console.core", "asyncpg", "textual", "alembic"}


async def test_stdout_closed_early_is_quiet_with_the_sigpipe_status(
    cli, su: asyncpg.Connection, database_dsn: str, tmp_path: Path
) -> None:
    assert cli("init").returncode == 0
    # Enough rows that the output outgrows the pipe's buffer: the reader leaves mid-output.
    await su.execute(
        "INSERT INTO public.tenants (key, schema_name, display_name, status) "
        "SELECT 'shop_' || i, 'tenant_shop_' || i, 'Shop ' || i, 'ARCHIVED' "
        "FROM generate_series(1, 3000) AS i"
    )
    config = tmp_path / "cli-config.toml"
    prefix = [sys.executable, "-m", "console", "--config", str(config), "--dsn", database_dsn]
    for args in (["tenants", "list"], ["tenants", "list", "--json"]):
        with subprocess.Popen(
            [*prefix, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.readline()  # like `| head -1`: one line, then no reader
            proc.stdout.close()
            stderr = proc.stderr.read().decode()
            assert proc.wait(timeout=120) == 128 + signal.SIGPIPE, stderr
        assert stderr == "", args


def _interactive(args: list[str], answer: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, type ``answer`` at the prompt; (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"to confirm" in output:
                os.write(master, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, output.decode(errors="replace")


async def test_interactive_confirmation_requires_the_typed_key(
    cli, database_dsn: str, tmp_path: Path
) -> None:
    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme").returncode == 0
    config = tmp_path / "cli-config.toml"
    base = ["--config", str(config), "--dsn", database_dsn, "tenants", "offboard", "acme"]
    code, output = _interactive(base, "acm")
    assert code == 2, output
    assert "confirmation did not match" in output
    assert await status_of(database_dsn, "acme") == "ACTIVE"
    code, output = _interactive(base, "acme")
    assert code == 0, output
    assert await status_of(database_dsn, "acme") == "ARCHIVED"


async def test_libpq_environment_and_goconsole_dsn(cli, pg_cluster, database_dsn: str) -> None:
    assert cli("init").returncode == 0
    assert cli("tenants", "provision", "acme").returncode == 0
    dbname = database_dsn.rsplit("/", 1)[1]
    libpq = {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_cluster.port),
        "PGUSER": "postgres",
        "PGDATABASE": dbname,
        "PGPASSWORD": "pg-env-secret",
    }
    via_env = cli("tenants", "list", "--json", dsn=None, env=libpq)
    assert via_env.returncode == 0, via_env.stderr
    assert [t["key"] for t in json.loads(via_env.stdout)] == ["acme"]
    # With no DSN anywhere, stderr says once which server the PG* variables and defaults chose.
    notice = (
        "goconsole: no DSN given (--dsn, $GOCONSOLE_DSN, [clusters.primary] dsn): PG* variables "
        f"and defaults chose host 127.0.0.1, port {pg_cluster.port}, database {dbname}, "
        "user postgres"
    )
    assert via_env.stderr.splitlines() == [notice]
    via_var = cli("tenants", "list", "--json", dsn=None, env={"GOCONSOLE_DSN": database_dsn})
    assert [t["key"] for t in json.loads(via_var.stdout)] == ["acme"]
    assert via_var.stderr == ""
    # With no DSN anywhere, a tenant backup still reaches the same cluster through PG* vars.
    down = cli("tenants", "deactivate", "acme", "--yes", dsn=None, env=libpq)
    assert down.returncode == 0, down.stderr
    assert down.stderr.splitlines().count(notice) == 1
    assert "pg-env-secret" not in down.stderr + down.stdout


async def test_a_cluster_where_init_never_ran_says_so(
    cli, pg_cluster, database_dsn: str, tmp_path: Path
) -> None:
    where = f"postgres@127.0.0.1:{pg_cluster.port}/{database_dsn.rsplit('/', 1)[1]}"
    expected = (
        f"goconsole: error: the cluster at {where} is not initialised (no public.tenants "
        "registry); run 'goconsole init' with the same connection options first"
    )
    for args in (("tenants", "list"), ("migrate", "status"), ("audit",), ("tui",)):
        result = cli(*args)
        assert (result.returncode, one_error_line(result)) == (2, expected), args
    # On a terminal the console does not start either: the same line, exit 2.
    code, output = _interactive(
        ["--config", str(tmp_path / "cli-config.toml"), "--dsn", database_dsn, "tui"], ""
    )
    assert (code, output.strip()) == (2, expected)
    debug = cli("--debug", "tenants", "show", "acme")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "NotInitialised" in debug.stderr
    assert debug.stderr.splitlines()[-1] == expected
    assert "--debug" not in debug.stderr
    assert cli("init").returncode == 0
    assert cli("tenants", "list").returncode == 0


def test_password_is_never_printed(cli) -> None:
    result = cli(
        "tenants",
        "list",
        dsn="postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere",
        env={"DB_PASSWORD": "an0ther-secret"},
    )
    assert result.returncode == 1
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "an0ther-secret" not in result.stderr + result.stdout


def test_demo_serves_until_interrupted_and_reuses_its_data_dir() -> None:
    root = Path(tempfile.mkdtemp(prefix="goconsole-demo-test-"))
    root.chmod(0o755)  # the server's OS user must reach the data dir
    try:
        _demo_twice(root / "demo")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _demo_twice(data_dir: Path) -> None:
    args = [sys.executable, "-m", "console", "demo", "--no-ui", "--tenants", "6"]
    config = data_dir / "goconsole.toml"

    def serve() -> str:
        proc = subprocess.Popen(
            [*args, "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one pipe, read to the end: a full pipe would block it
            text=True,
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops the server."):
                break
        assert (data_dir / "pgdata" / "postmaster.pid").exists()
        listed = subprocess.run(
            [sys.executable, "-m", "console", "--config", str(config), "tenants", "list"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("GOCONSOLE_")},
        )
        assert listed.returncode == 0, listed.stderr
        assert "acme_outdoors" in listed.stdout
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
        return "".join(lines) + rest

    first = serve()
    assert "tenants:      4 ACTIVE, 1 ARCHIVED, 1 INACTIVE" in first
    assert "[provision acme_outdoors]" in first
    assert f"try:          goconsole --config {config} tenants list" in first
    settings = load_settings(str(config))
    assert settings.backup.dir == str(data_dir / "backups")
    assert settings.cluster().dsn.endswith("/gocommerce")
    assert Path(settings.backup.identity_file).parent == data_dir
    second = serve()
    assert "tenants:      4 ACTIVE, 1 ARCHIVED, 1 INACTIVE" in second
    # the demo's age identity was kept: backups taken before stay readable
    assert load_settings(str(config)).backup.recipients == settings.backup.recipients
    assert "[provision" not in second  # the persistent data dir was reused
    if pgbouncer_binary() is not None:
        assert settings.pgbouncer.include_file == str(data_dir / "pgbouncer" / "tenants.ini")
        assert f"try:          goconsole --config {config} pool show" in second
        # PostgreSQL came back on another port: sync at start pointed the 5 aliases at it
        assert "pool sync:    5 alias(es) changed: 0 added, 0 removed, 5 updated" in second
        assert "tenant_acme_outdoors: port " in second
