"""Layering: console/core never imports textual (nor the textual-based plotting widgets) nor
console/devenv, and only console/core talks to PostgreSQL and PgBouncer (imports a database
driver). A second guard beside the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

CORE = PROJECT_ROOT / "console" / "core"
UI_PACKAGES = ("textual", "textual_plotext")
DEVENV_MODULES = ("console.devenv",)
DRIVER_PACKAGES = ("asyncpg", "psycopg", "psycopg2", "sqlalchemy")


def ui_imports(
    source: str, filename: str = "<test>", packages: tuple[str, ...] = UI_PACKAGES
) -> list[str]:
    """Modules from ``packages`` imported anywhere in ``source`` (also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            name
            for name in names
            if name.split(".")[0] in packages
            or any(name == p or name.startswith(p + ".") for p in packages)
        ]
    return found


def test_the_import_scanner_finds_ui_imports() -> None:
    source = (
        "import os, textual.app\n"
        "from textual.widgets import Static\n"
        "def late():\n"
        "    import textual_plotext\n"
        "from . import textual\n"  # a relative module of the same name is not the package
        "import textualize\n"
    )
    assert ui_imports(source) == ["textual.app", "textual.widgets", "textual_plotext"]


def test_no_core_module_imports_textual() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 10, f"console/core looks empty: {modules}"
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in modules
        if (found := ui_imports(path.read_text(encoding="utf-8"), str(path)))
    }
    assert offenders == {}


def test_the_import_scanner_finds_dotted_packages() -> None:
    source = "from console.devenv.postgres import LocalCluster\nimport console.devenvx\n"
    assert ui_imports(source, packages=DEVENV_MODULES) == ["console.devenv.postgres"]


def test_no_core_module_imports_the_dev_environment() -> None:
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in sorted(CORE.rglob("*.py"))
        if (found := ui_imports(path.read_text(encoding="utf-8"), str(path), DEVENV_MODULES))
    }
    assert offenders == {}


@pytest.mark.parametrize(("front_end", "other"), [("cli", "console.ui"), ("ui", "console.cli")])
def test_the_cli_and_the_ui_never_import_each_other(front_end: str, other: str) -> None:
    modules = sorted((PROJECT_ROOT / "console" / front_end).rglob("*.py"))
    assert len(modules) >= 5, f"console/{front_end} looks empty: {modules}"
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in modules
        if (found := ui_imports(path.read_text(encoding="utf-8"), str(path), (other,)))
    }
    assert offenders == {}


def test_only_the_core_imports_database_drivers() -> None:
    outside = [
        path
        for path in sorted((PROJECT_ROOT / "console").rglob("*.py"))
        if CORE not in path.parents
    ]
    assert any(path.parent.name == "cli" for path in outside)
    assert any(path.parent.name == "devenv" for path in outside)
    offenders = {
        str(path.relative_to(PROJECT_ROOT)): found
        for path in outside
        if (found := ui_imports(path.read_text(encoding="utf-8"), str(path), DRIVER_PACKAGES))
    }
    assert offenders == {}


def loaded_ui_modules(statement: str) -> list[str]:
    probe = (
        f"import sys\n{statement}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {UI_PACKAGES!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return list(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module", ["console.core.service", "console.core.tenants.lifecycle", "console.config"]
)
def test_importing_the_core_does_not_load_textual(module: str) -> None:
    assert loaded_ui_modules(f"import {module}") == []


def test_the_probe_sees_textual_when_it_is_loaded() -> None:
    assert "textual" in loaded_ui_modules("import textual")


def test_core_package_path_is_the_checkout() -> None:
    import console.core

    assert Path(console.core.__file__).resolve().parent == CORE


# Core strings (file, words in them) that name goconsole or one of its flags without speaking
# to an operator.
NOT_MESSAGES = {
    ("operations.py", "goconsole "): "the application_name label lock holders show",
    ("tenants/bulk_build.py", "goconsole step: "): "a marker inside a PostgreSQL HINT",
    ("tenants/schema.py", "goconsole access check"): "the label of a row the check inserts",
    ("binaries.py", "--version"): "postgres --version, the server binary's own flag",
    ("backups/pgrestore.py", "--version"): "pg_restore --version, the tool's own flag",
    ("backups/take.py", "--version"): "pg_dump --version, the tool's own flag",
    ("backups/take.py", "goconsole backup "): "the application_name pg_dump shows",
    ("backups/manifest.py", "goconsole backup manifest"): "the name of the file format",
    ("scheduler/leader.py", "goconsole scheduler "): "the application_name the leader shows",
}


def cli_flags() -> set[str]:
    """Every long option of every goconsole command."""
    from console.cli.parser import build_parser

    flags: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        for action in parsers.pop()._actions:
            flags |= {o for o in action.option_strings if o.startswith("--")}
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
    return flags


def front_end_words(source: str, flags: set[str]) -> list[str]:
    """String constants in ``source`` (f-string parts included, docstrings not) that name
    ``goconsole`` or one of ``flags``."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    named = re.compile(r"goconsole |" + "|".join(rf"{re.escape(f)}(?![\w-])" for f in flags))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and named.search(node.value)
    ]


def test_the_message_scanner_finds_flags_and_commands() -> None:
    source = (
        '"""Run ``goconsole init`` first (a docstring)."""\n'
        "def f(key, t):\n"
        '    """Names --force (a docstring)."""\n'
        '    raise X(f"no tenant {key} (see: goconsole tenants list)")\n'
        '    raise X(f"waited {t}s: rerun with --force")\n'
        '    raise X("the --forced-choice is not the flag; pg_dump --schema-only is not ours")\n'
    )
    assert front_end_words(source, {"--force", "--schema"}) == [
        " (see: goconsole tenants list)",
        "s: rerun with --force",
    ]


def test_core_messages_name_no_cli_flag_or_command() -> None:
    """The core words errors for every front end: hints (console.core.hints) carry what the
    CLI renders as a flag or command and the UI as a key or action."""
    flags = cli_flags()
    assert {"--force", "--timeout", "--concurrency"} <= flags
    offenders = [
        (name, text)
        for path in sorted(CORE.rglob("*.py"))
        for text in front_end_words(path.read_text(encoding="utf-8"), flags)
        if not any(
            (name := str(path.relative_to(CORE))) == where and words in text
            for where, words in NOT_MESSAGES
        )
    ]
    assert offenders == []
