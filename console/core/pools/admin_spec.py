"""Where PgBouncer's admin console is and how to log in, from the flag, the environment or the
config; no driver is imported here, so knowing whether PgBouncer is configured costs nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass

from console.config import PgBouncerSettings
from console.core.conninfo import ConninfoError, make_conninfo, parse_conninfo
from console.core.errors import ConfigError, NotConfigured

DSN_ENV = "GOCONSOLE_PGBOUNCER_DSN"
ADMIN_DATABASE = "pgbouncer"  # the admin console's database name


@dataclass(frozen=True)
class AdminSpec:
    """How to reach the admin console. ``password`` is never printed."""

    conninfo: str
    password: str | None
    command_timeout: float

    @classmethod
    def resolve(cls, settings: PgBouncerSettings, override: str | None = None) -> AdminSpec:
        """``override`` / ``$GOCONSOLE_PGBOUNCER_DSN`` / ``[pgbouncer] admin_dsn``, password from
        the environment variable named by ``admin_password_env``."""
        dsn = override or os.environ.get(DSN_ENV) or settings.admin_dsn
        if not dsn:
            raise NotConfigured(
                "PgBouncer is not configured: set [pgbouncer] admin_dsn (and include_file) in "
                f"the config file, or ${DSN_ENV}"
            )
        try:
            params = parse_conninfo(dsn)
        except ConninfoError as exc:
            raise ConfigError(f"invalid PgBouncer admin DSN: {exc}") from None
        password = params.pop("password", None)
        env_password = os.environ.get(settings.admin_password_env or "")
        if env_password:
            password = env_password
        params.setdefault("dbname", ADMIN_DATABASE)
        params.setdefault("connect_timeout", str(max(1, round(settings.command_timeout))))
        return cls(
            make_conninfo(params),
            password,
            settings.command_timeout,
        )

    def describe(self) -> str:
        """``user@host:port`` for messages."""
        p = parse_conninfo(self.conninfo)
        return f"{p.get('user', '(os user)')}@{p.get('host', 'localhost')}:{p.get('port', '6432')}"
