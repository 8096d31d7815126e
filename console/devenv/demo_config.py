"""The settings ``goconsole demo`` runs with, and the config file it writes for later commands
(rewritten at each start: the ports change)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from console.config import BackupSettings, Settings
from console.devenv.pgbouncer import LocalPgBouncer

DEMO_CONFIG = "goconsole.toml"
# The demo's age identity: generated at the first start, reused after; backups are encrypted to it.
DEMO_IDENTITY = "backup-identity.txt"


def settings_for_demo(
    settings: Settings, root: Path, bouncer: LocalPgBouncer | None, recipient: str
) -> Settings:
    """``settings`` writable, with backups in the demo folder ``root``, encrypted to
    ``recipient`` (whose identity is :data:`DEMO_IDENTITY` there) and, when ``bouncer`` runs,
    its admin DSN, include file and log."""
    backup = BackupSettings(
        dir=str(root / "backups"),
        recipients=(recipient,),
        identity_file=str(root / DEMO_IDENTITY),
    )
    demo = dataclasses.replace(settings, read_only=False, backup=backup)
    if bouncer is None:
        return demo
    assert bouncer.include_file is not None
    return dataclasses.replace(
        demo,
        pgbouncer=dataclasses.replace(
            settings.pgbouncer,
            admin_dsn=bouncer.admin_dsn,
            include_file=str(bouncer.include_file),
            log_file=str(bouncer.log_file),
        ),
    )


def write_demo_config(root: Path, dsn: str, settings: Settings) -> Path:
    """``goconsole.toml`` in the demo folder (rewritten at each start: the ports change): the
    cluster DSN, the backup dir and age keys in the demo folder and, when it runs, the demo's
    PgBouncer."""
    cluster = settings.cluster()
    lines = [
        "# Written by `goconsole demo` at each start (the ports change): use it with",
        "#   goconsole --config <this file> tenants list",
        f"default_cluster = {_toml(settings.default_cluster)}",
        "",
        f"[clusters.{_toml(settings.default_cluster)}]",
        f"dsn = {_toml(dsn)}",
        f"app_role = {_toml(cluster.app_role)}",
        "",
        "[backup]",
        f"dir = {_toml(settings.backup.dir)}",
        f"recipients = [{', '.join(_toml(r) for r in settings.backup.recipients)}]",
        f"identity_file = {_toml(settings.backup.identity_file)}",
    ]
    bouncer = settings.pgbouncer
    if bouncer.admin_dsn:
        lines += ["", "[pgbouncer]"]
        lines += [
            f"{key} = {_toml(value)}"
            for key, value in (
                ("admin_dsn", bouncer.admin_dsn),
                ("include_file", bouncer.include_file),
                ("log_file", bouncer.log_file),
            )
        ]
    path = root / DEMO_CONFIG
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)
