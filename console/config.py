"""Configuration: TOML file -> frozen, typed settings, with clear errors.

Search order: ``--config``, ``$GOCONSOLE_CONFIG``, ``./config.toml``, then the user config
directory. Unknown keys and wrong types are errors naming the file, the key and what is allowed.
Secrets never live in the file: passwords come from the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from console.config_checks import check_settings
from console.core.errors import ConfigError

APP_NAME = "goconsole"
T = TypeVar("T")


@dataclass(frozen=True)
class ClusterSettings:
    """One PostgreSQL cluster the console manages (connect directly, not through PgBouncer)."""

    dsn: str = ""
    user_env: str = "DB_USER"
    password_env: str = "DB_PASSWORD"
    app_role: str = "gocommerce_app"
    pool_min_size: int = 1
    pool_max_size: int = 10
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class LifecycleSettings:
    """Tenant lifecycle behaviour."""

    drain_timeout: float = 30.0
    lock_timeout: float = 5.0
    provision_concurrency: int = 4


@dataclass(frozen=True)
class BackupSettings:
    """Backups (seed Appendix B)."""

    dir: str = ""
    pg_bin_dir: str = ""
    compression: bool = True
    encryption: bool = True
    validation: bool = True
    full_retention_days: int = 30
    incremental_retention_days: int = 7
    # Backups of ARCHIVED tenants: days kept after the tenant was archived; 0 keeps them.
    archived_retention_days: int = 0
    # zstd level (1-22) when ``compression`` is on.
    compression_level: int = 3
    # age X25519 recipients ("age1…") the backups are encrypted to, inline and/or from a file
    # (one per line, # comments), as ``age -r`` / ``age -R`` take them.
    recipients: tuple[str, ...] = ()
    recipients_file: str = ""
    # age identity file (private key) to decrypt with: verify and restore need it, backups not.
    identity_file: str = ""
    # Tenants backed up (or verified) at once; each holds a lock and a work connection.
    concurrency: int = 2
    # A tenant whose newest full is older than its schedule's interval plus this is STALE.
    stale_grace_hours: float = 2.0
    # Days a restore keeps the schema it replaced (``backups restore --rollback`` needs it).
    keep_replaced_days: float = 7.0
    # How many random tenants ``backups drill`` restores when given no key.
    drill_sample: int = 3


@dataclass(frozen=True)
class ScheduleSettings:
    """When the embedded scheduler runs each job: 5-field cron (minute first) or Quartz
    (seconds first, ``?`` for any)."""

    full_backup: str = "0 2 * * *"
    incremental_backup: str = "0 */4 * * *"
    retention_prune: str = "30 3 * * *"
    schema_stats: str = "0 * * * *"
    health_check: str = "* * * * *"
    restore_drill: str = "15 4 * * *"
    purge_replaced: str = "0 5 * * *"


@dataclass(frozen=True)
class SchedulerSettings:
    """The embedded scheduler: whether the TUI hosts it, and how often a standby tries to
    become the leader."""

    enabled: bool = True
    leader_poll_s: float = 5.0


@dataclass(frozen=True)
class HealthSettings:
    """Health checks (``goconsole health``, the Health screen, the scheduled check): each check
    warns at its ``*_warn*`` value and is critical at its ``*_crit*`` value."""

    select1_warn_ms: float = 100.0
    select1_crit_ms: float = 1000.0
    replication_lag_warn_s: float = 10.0
    replication_lag_crit_s: float = 60.0
    replication_lag_warn_bytes: int = 16 * 1024 * 1024
    replication_lag_crit_bytes: int = 256 * 1024 * 1024
    # Standbys the primary should stream to; fewer connected is CRIT (0: none expected).
    expected_standbys: int = 0
    slot_retained_warn_bytes: int = 1024**3
    slot_retained_crit_bytes: int = 10 * 1024**3
    connections_warn_pct: float = 70.0
    connections_crit_pct: float = 90.0
    idle_in_transaction_warn_s: float = 60.0
    idle_in_transaction_crit_s: float = 600.0
    long_query_warn_s: float = 300.0
    long_query_crit_s: float = 1800.0
    blocked_warn: int = 1
    blocked_crit: int = 10
    # age(datfrozenxid) as a percentage of autovacuum_freeze_max_age.
    wraparound_warn_pct: float = 100.0
    wraparound_crit_pct: float = 400.0
    pool_wait_warn_ms: float = 100.0
    pool_wait_crit_ms: float = 1000.0
    # A tenant whose newest successful full backup is older than this is stale.
    backup_max_age_hours: float = 26.0
    # How long health samples (the graphs' history) are kept.
    sample_retention_hours: float = 48.0
    # Seconds between the Health screen's checks.
    screen_interval: float = 5.0


@dataclass(frozen=True)
class StatsSettings:
    """Schema statistics history (collected on ``schedule.schema_stats``)."""

    # Days of hourly figures kept; the growth column compares with a week ago, so at least 8.
    retention_days: int = 30


@dataclass(frozen=True)
class PgBouncerSettings:
    """The PgBouncer in front of the default cluster (empty ``admin_dsn``: not managed)."""

    admin_dsn: str = ""
    admin_password_env: str = "PGBOUNCER_ADMIN_PASSWORD"
    include_file: str = ""
    log_file: str = ""
    server_host: str = ""
    server_port: int = 0
    server_dbname: str = ""
    default_pool_size: int = 20
    default_reserve_pool: int = 5
    max_pool_size: int = 50
    poll_interval: float = 1.0
    pause_timeout: float = 30.0
    command_timeout: float = 5.0
    history_minutes: int = 10


@dataclass(frozen=True)
class UiSettings:
    """Terminal UI."""

    refresh_interval: float = 2.0
    theme: str = "gocommerce-dark"
    environment: str = "development"
    builtin_themes: bool = False


@dataclass(frozen=True)
class SecuritySettings:
    """What the application role may see of the registry."""

    # Top-level keys of a tenant's ``config`` JSON that ``public.resolve_tenant`` returns.
    public_config_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything the console reads from its configuration."""

    default_cluster: str = "primary"
    read_only: bool = False
    clusters: dict[str, ClusterSettings] = field(
        default_factory=lambda: {"primary": ClusterSettings()}
    )
    lifecycle: LifecycleSettings = LifecycleSettings()
    backup: BackupSettings = BackupSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    health: HealthSettings = HealthSettings()
    stats: StatsSettings = StatsSettings()
    pgbouncer: PgBouncerSettings = PgBouncerSettings()
    ui: UiSettings = UiSettings()
    security: SecuritySettings = SecuritySettings()
    keys: dict[str, str] = field(default_factory=dict)
    source: str = "(defaults)"

    def cluster(self, name: str | None = None) -> ClusterSettings:
        """The named cluster (default: ``default_cluster``)."""
        wanted = name or self.default_cluster
        try:
            return self.clusters[wanted]
        except KeyError:
            allowed = ", ".join(sorted(self.clusters)) or "(none configured)"
            raise ConfigError(f"unknown cluster {wanted!r}; configured: {allowed}") from None

    def backup_dir(self) -> Path:
        """Where backups and offboarding exports go."""
        if self.backup.dir:
            return Path(self.backup.dir).expanduser()
        return platformdirs.user_data_path(APP_NAME) / "backups"


def find_config_file(explicit: str | None, cwd: Path | None = None) -> Path | None:
    """The config file to read, by the documented search order, or None."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get("GOCONSOLE_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"$GOCONSOLE_CONFIG names {path}, which does not exist")
        return path
    for candidate in (
        (cwd or Path.cwd()) / "config.toml",
        platformdirs.user_config_path(APP_NAME) / "config.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load_settings(explicit: str | None = None, cwd: Path | None = None) -> Settings:
    """Find and parse the configuration; defaults when there is no file."""
    path = find_config_file(explicit, cwd)
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_settings(raw, str(path))


def parse_settings(raw: dict[str, Any], source: str) -> Settings:
    """Build Settings from a parsed TOML document; errors name ``source`` and the key."""
    clusters_raw = raw.pop("clusters", None)
    keys_raw = raw.pop("keys", None)
    settings = _build(Settings, raw, source, "")
    if keys_raw is not None:
        keys = _table(keys_raw, source, "keys")
        for binding_id, key in keys.items():
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(
                    f'{source}: keys.{binding_id} must be a key name such as "f2" or '
                    f'"ctrl+t" (several separated by commas), got {key!r}'
                )
        settings = dataclasses.replace(settings, keys=dict(keys))
    if clusters_raw is not None:
        if not isinstance(clusters_raw, dict) or not clusters_raw:
            raise ConfigError(f"{source}: [clusters] must hold at least one [clusters.NAME] table")
        clusters = {
            name: _build(
                ClusterSettings,
                _table(value, source, f"clusters.{name}"),
                source,
                f"clusters.{name}.",
            )
            for name, value in clusters_raw.items()
        }
        settings = dataclasses.replace(settings, clusters=clusters)
    settings = dataclasses.replace(settings, source=source)
    try:
        settings.cluster()  # default_cluster must name a configured cluster
    except ConfigError as exc:
        raise ConfigError(f"{source}: default_cluster: {exc}") from None
    check_settings(settings, source)
    return settings


def _table(value: object, source: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be a table")
    return value


_SKIP = {"clusters", "keys", "source"}


def _build(cls: type[T], raw: dict[str, Any], source: str, prefix: str) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _SKIP}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: unknown key {prefix}{key}; allowed here: {allowed}")
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            values[key] = _build(
                expected,  # type: ignore[arg-type]
                _table(value, source, prefix + key),
                source,
                f"{prefix}{key}.",
            )
        else:
            values[key] = _coerce(value, expected, source, prefix + key)
    return cls(**values)


def _coerce(value: object, expected: object, source: str, key: str) -> object:
    if expected == tuple[str, ...]:
        return _string_list(value, source, key)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(expected, type) and type(value) is expected:
        return value
    name = expected.__name__ if isinstance(expected, type | types.GenericAlias) else str(expected)
    word = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}
    raise ConfigError(
        f"{source}: {key} must be {word.get(name, name)}, got {type(value).__name__} {value!r}"
    )


def _string_list(value: object, source: str, key: str) -> tuple[str, ...]:
    """A TOML list of distinct, non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f'{source}: {key} must be a list of non-empty strings, e.g. ["locale"], got {value!r}'
        )
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ConfigError(f"{source}: {key} lists {', '.join(map(repr, repeated))} more than once")
    return tuple(value)
