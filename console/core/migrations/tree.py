"""The two alembic trees (``control`` for public, ``tenant`` per tenant schema) and how to run them.

Alembic keeps ``context``/``op`` as module globals, so at most one upgrade runs in a process at a
time (``ALEMBIC_LOCK``); concurrency comes from cloning a template or from other processes.
"""

from __future__ import annotations

import ast
import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from console.core.db import ConnectionSpec

if TYPE_CHECKING:  # alembic and SQLAlchemy load only when a tree is read or run (start-up time)
    import psycopg
    from alembic.config import Config
    from alembic.script import ScriptDirectory

Tree = Literal["control", "tenant"]
VERSION_TABLE = "schema_version"
ALEMBIC_LOCK = threading.Lock()


def migrations_root() -> Path:
    """The ``migrations/`` folder: packaged inside ``console`` or beside it in a checkout."""
    package_dir = Path(__file__).resolve().parents[2]
    for candidate in (package_dir / "migrations", package_dir.parent / "migrations"):
        if (candidate / "control" / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"no migrations/ folder next to {package_dir}")


def alembic_config(tree: Tree) -> Config:
    """A programmatic alembic Config for one tree (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_root() / tree))
    return cfg


@functools.cache
def script_directory(tree: Tree) -> ScriptDirectory:
    """The revisions of one tree (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(tree))


@functools.cache
def head_revision(tree: Tree) -> str:
    """The single head revision of a tree: the revision no other one revises, read from the
    ``revision``/``down_revision`` assignments of its files without loading alembic (a command
    that only needs the head, such as ``tenants provision``, starts without it)."""
    revises: dict[str, tuple[str, ...]] = {}
    for path in sorted((migrations_root() / tree / "versions").glob("*.py")):
        found = _revision_names(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if "revision" in found:
            revises[found["revision"][0]] = found.get("down_revision", ())
    heads = set(revises).difference(*revises.values())
    if len(heads) != 1:
        found_heads = ", ".join(sorted(heads)) or "none"
        raise RuntimeError(f"the {tree} migration tree needs exactly one head, found {found_heads}")
    return heads.pop()


def _revision_names(module: ast.Module) -> dict[str, tuple[str, ...]]:
    """The module-level ``revision`` and ``down_revision`` of a revision file, as tuples of
    revision ids (``None`` is empty; a merge revises several)."""
    names: dict[str, tuple[str, ...]] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            literal = ast.literal_eval(value)
            ids = (literal,) if isinstance(literal, str) else tuple(literal or ())
            names[target.id] = tuple(str(v) for v in ids)
    return names


class AlembicRunner:
    """Runs alembic upgrades on one cluster over a short-lived psycopg connection."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        return psycopg.connect(
            self.spec.conninfo,
            password=self.spec.password,
            connect_timeout=max(1, int(self.spec.connect_timeout)),
            application_name="goconsole-alembic",
        )

    def _run(self, tree: Tree, direction: str, target: str, **attributes: str) -> None:
        from alembic import command
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        cfg = alembic_config(tree)
        engine = create_engine("postgresql+psycopg://", creator=self._connect, poolclass=NullPool)
        try:
            with ALEMBIC_LOCK, engine.connect() as connection:
                cfg.attributes.update(attributes)
                cfg.attributes["connection"] = connection
                getattr(command, direction)(cfg, target)
                connection.commit()
        finally:
            engine.dispose()

    def upgrade_control(self, target: str = "head") -> None:
        """Bring the public schema to ``target``."""
        self._run("control", "upgrade", target)

    def upgrade_tenant(self, schema: str, tenant_id: str, target: str = "head") -> None:
        """Create ``schema`` if needed and bring it to ``target``, all in one transaction."""
        self._run("tenant", "upgrade", target, schema=schema, tenant_id=tenant_id)

    def downgrade_tenant(self, schema: str, tenant_id: str, target: str) -> None:
        """Take ``schema`` down to ``target`` (runbooks, tests of mixed-revision fleets)."""
        self._run("tenant", "downgrade", target, schema=schema, tenant_id=tenant_id)
