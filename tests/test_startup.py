"""Start-up: a CLI call loads only what its command uses. Commands that need neither a migration
tree nor the terminal console never import alembic, SQLAlchemy, textual or plotext (what they
load is checked, not how long it takes: speed is in bench/startup.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from console.core.migrations.tree import Tree, head_revision, script_directory

HEAVY = ("alembic", "sqlalchemy", "textual", "textual_plotext", "plotext")
# Runs one command like `goconsole`, then prints which heavy packages the process loaded.
PROBE = (
    "import sys\n"
    "from console.entry import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:  # argparse's --version and --help exit\n"
    "    code = exc.code\n"
    f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})\n"
    "print(repr((code, loaded)), file=sys.stderr)\n"
)


def loaded_by(args: list[str], tmp_path: Path) -> tuple[int, list[str]]:
    """Run ``goconsole ARGS`` in a fresh process; its exit code and the heavy packages it
    imported, start to finish."""
    config = tmp_path / "config.toml"
    config.write_text(f'[backup]\ndir = "{tmp_path / "backups"}"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(config), *args],
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


@pytest.mark.parametrize(
    "command", [["tenants", "list"], ["tenants", "provision", "shop"], ["--version"]]
)
def test_commands_without_a_tree_or_the_console_load_none_of_them(
    database_dsn: str, tmp_path: Path, command: list[str]
) -> None:
    assert loaded_by(["--dsn", database_dsn, "init"], tmp_path)[0] == 0
    assert loaded_by(["--dsn", database_dsn, *command], tmp_path) == (0, [])


@pytest.mark.parametrize("tree", ["control", "tenant"])
def test_the_head_read_without_alembic_is_alembics_head(tree: Tree) -> None:
    assert head_revision(tree) == script_directory(tree).get_current_head()
