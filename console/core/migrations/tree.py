"""The two alembic trees (``control`` for public, ``tenant`` per tenant schema) and how to run them.

Alembic keeps ``context``/``op`` as module globals, so at most one upgrade runs in a process at a
time (``ALEMBIC_LOCK``); concurrency comes from cloning a template or from other processes.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Literal

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from console.core.db import ConnectionSpec

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
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_root() / tree))
    return cfg


@functools.cache
def script_directory(tree: Tree) -> ScriptDirectory:
    """The revisions of one tree (read once per process)."""
    return ScriptDirectory.from_config(alembic_config(tree))


def head_revision(tree: Tree) -> str:
    """The single head revision of a tree."""
    head = script_directory(tree).get_current_head()
    if head is None:
        raise RuntimeError(f"the {tree} migration tree has no revisions")
    return head


class AlembicRunner:
    """Runs alembic upgrades on one cluster over a short-lived psycopg connection."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.spec.conninfo,
            password=self.spec.password,
            connect_timeout=max(1, int(self.spec.connect_timeout)),
            application_name="goconsole-alembic",
        )

    def _run(self, tree: Tree, direction: str, target: str, **attributes: str) -> None:
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
