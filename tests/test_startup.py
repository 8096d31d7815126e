"""Start-up: a CLI call loads only what its command uses. Commands that need neither a migration
tree nor the terminal console never import alembic, SQLAlchemy, textual or plotext; ``tenants
list`` and ``--version`` load no sub-service they do not use and no psycopg either (what they
load is checked, not how long it takes: speed is in bench/startup.py)."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli.main import command_for
from console.cli.parser import build_parser
from console.core.migrations.tree import Tree, head_revision, script_directory

HEAVY = ("alembic", "sqlalchemy", "textual", "textual_plotext", "plotext")
# What `tenants list` does not use: the PgBouncer driver (DSNs are parsed without it), the
# sub-services the facade builds on first use, and the CLI areas of other commands.
UNUSED_BY_LIST = (
    *HEAVY,
    "psycopg",
    "console.core.backups.store",
    "console.core.bootstrap",
    "console.core.migrations.runner",
    "console.core.operations",
    "console.core.pools.service",
    "console.core.security.privileges",
    "console.core.tenants.lifecycle",
    "console.core.tenants.provision",
    "console.cli.migrate",
    "console.cli.pools",
    "console.cli.privileges",
)
# `--version` is answered before the CLI or the core load.
UNUSED_BY_VERSION = (*UNUSED_BY_LIST, "asyncpg", "console.cli", "console.core.service")
# Runs one command like `goconsole`, then prints which of the modules named in argv[1] (a
# comma-separated list) the process loaded.
PROBE = (
    "import sys\n"
    "watched = sys.argv.pop(1).split(',')\n"
    "from console.entry import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:  # argparse's --help exits\n"
    "    code = exc.code\n"
    "loaded = [name for name in watched if name in sys.modules]\n"
    "print(repr((code, loaded)), file=sys.stderr)\n"
)


def loaded_by(
    args: list[str], tmp_path: Path, watched: tuple[str, ...] = HEAVY, configured: bool = True
) -> tuple[int, list[str]]:
    """Run ``goconsole ARGS`` (after ``--config FILE`` when ``configured``) in a fresh process;
    its exit code and which modules of ``watched`` it imported, start to finish."""
    config = tmp_path / "config.toml"
    config.write_text(f'[backup]\ndir = "{tmp_path / "backups"}"\n', encoding="utf-8")
    if configured:
        args = ["--config", str(config), *args]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(watched), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    code, loaded = ast.literal_eval(result.stderr.strip().splitlines()[-1])
    return code, loaded


def test_the_probe_sees_a_heavy_import(database_dsn: str, tmp_path: Path) -> None:
    assert loaded_by(["--dsn", database_dsn, "init"], tmp_path) == (0, ["alembic", "sqlalchemy"])


@pytest.mark.parametrize("command", [["tenants", "list"], ["tenants", "provision", "shop"]])
def test_commands_without_a_tree_or_the_console_load_none_of_them(
    database_dsn: str, tmp_path: Path, command: list[str]
) -> None:
    assert loaded_by(["--dsn", database_dsn, "init"], tmp_path)[0] == 0
    assert loaded_by(["--dsn", database_dsn, *command], tmp_path) == (0, [])


def test_tenants_list_loads_only_what_it_uses(database_dsn: str, tmp_path: Path) -> None:
    assert loaded_by(["--dsn", database_dsn, "init"], tmp_path)[0] == 0
    assert loaded_by(["--dsn", database_dsn, "tenants", "provision", "shop"], tmp_path)[0] == 0
    listed = ["--dsn", database_dsn, "tenants", "list"]
    assert loaded_by(listed, tmp_path, UNUSED_BY_LIST) == (0, [])
    # the probe sees what another command loads: provisioning builds its sub-service and asks
    # the pool service whether PgBouncer is configured (without loading its driver)
    provision = ["--dsn", database_dsn, "tenants", "provision", "shop2"]
    assert loaded_by(provision, tmp_path, UNUSED_BY_LIST)[1] == [
        "console.core.operations",
        "console.core.pools.service",
        "console.core.tenants.provision",
    ]


def test_version_loads_neither_the_cli_nor_the_core(tmp_path: Path) -> None:
    assert loaded_by(["--version"], tmp_path, UNUSED_BY_VERSION, configured=False) == (0, [])


def test_every_parsed_command_has_its_function() -> None:
    """The CLI imports a command's area only when it runs: every (command, action) the parser
    accepts must resolve to a function of that area."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    resolved = 0
    for name, sub in commands.items():
        if name in ("tui", "demo"):  # handled before dispatch
            continue
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for action in actions[0].choices if actions else [None]:
            assert callable(command_for(argparse.Namespace(command=name, action=action)))
            resolved += 1
    assert resolved > 20


@pytest.mark.parametrize("tree", ["control", "tenant"])
def test_the_head_read_without_alembic_is_alembics_head(tree: Tree) -> None:
    assert head_revision(tree) == script_directory(tree).get_current_head()
