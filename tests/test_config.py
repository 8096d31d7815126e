"""Configuration: TOML -> frozen typed settings, errors that name file and key, search order,
secrets from the environment (never in conninfo or messages)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from helpers import PROJECT_ROOT
from hypothesis import given
from hypothesis import strategies as st

from console.config import (
    ClusterSettings,
    Settings,
    find_config_file,
    load_settings,
    parse_settings,
)
from console.core.db import ConnectionSpec
from console.core.errors import ConfigError, ConnectionFailed
from console.core.service import ConsoleService


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config or connection settings leak in from the environment running the tests."""
    for name in ("GOCONSOLE_CONFIG", "GOCONSOLE_DSN", "DB_USER", "DB_PASSWORD", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_settings(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    return message


# -- errors name the file, the key and what is allowed -------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'colour = "red"\n')
    assert "unknown key colour" in message
    assert "allowed here:" in message and "read_only" in message


def test_unknown_nested_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[backup]\nretention = 3\n")
    assert "unknown key backup.retention" in message
    assert "full_retention_days" in message


def test_unknown_cluster_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[clusters.primary]\npasword_env = "X"\n')
    assert "unknown key clusters.primary.pasword_env" in message
    assert "password_env" in message


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            '[clusters.primary]\npool_max_size = "ten"\n',
            "clusters.primary.pool_max_size",
            "an integer",
        ),
        (
            "[clusters.primary]\npool_max_size = true\n",
            "clusters.primary.pool_max_size",
            "an integer",
        ),
        ('read_only = "yes"\n', "read_only", "true or false"),
        ('[lifecycle]\ndrain_timeout = "30s"\n', "lifecycle.drain_timeout", "a number"),
        ("[ui]\ntheme = 3\n", "ui.theme", "a string"),
        ('[ui]\nbuiltin_themes = "no"\n', "ui.builtin_themes", "true or false"),
        ("[schedule]\nfull_backup = 2\n", "schedule.full_backup", "a string"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, key: str, expected: str) -> None:
    assert f"{key} must be {expected}, got " in config_error(tmp_path, text)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ('"locale"', "must be a list of non-empty strings, e.g. [\"locale\"], got 'locale'"),
        ('["locale", 3]', "must be a list of non-empty strings"),
        ('[""]', "must be a list of non-empty strings"),
        ('["locale", "locale"]', "lists 'locale' more than once"),
    ],
)
def test_bad_public_config_fields(tmp_path: Path, value: str, complaint: str) -> None:
    error = config_error(tmp_path, f"[security]\npublic_config_fields = {value}\n")
    assert f"security.public_config_fields {complaint}" in error


def test_public_config_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[security]\npublic_config_fields = ["locale", "tz"]\n')
    assert load_settings(str(path)).security.public_config_fields == ("locale", "tz")


def test_table_expected(tmp_path: Path) -> None:
    assert "backup must be a table" in config_error(tmp_path, 'backup = "/srv"\n')


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("0 2 * *", "must be a 5-field cron expression"),
        ("every day", "must be a 5-field cron expression"),
        ("0 2 * * * * * *", "must be a 5-field cron expression"),
        ("0 0 2 ? * 8", "the day of week field '8' must use values 1-7"),
        ("61 * * * *", "the minute field '61' must use values 0-59"),
        ("0 24 * * *", "the hour field '24' must use values 0-23"),
        ("0 2 0 * *", "the day of month field '0' must use values 1-31"),
        ("0 2 * 13 *", "the month field '13' must use values 1-12"),
        ("0 2 * * 8", "the day of week field '8' must use values 0-7"),
        ("*/0 * * * *", "the minute field '*/0' has an invalid step"),
        ("30-10 * * * *", "the minute field '30-10' has a descending range"),
        ("x 2 * * *", "the minute field 'x' must use values 0-59"),
    ],
)
def test_bad_cron(tmp_path: Path, expr: str, complaint: str) -> None:
    message = config_error(tmp_path, f'[schedule]\nincremental_backup = "{expr}"\n')
    assert "schedule.incremental_backup" in message
    assert complaint in message
    assert repr(expr) in message


@pytest.mark.parametrize(
    "expr", ["0 2 * * *", "0 */4 * * *", "*/15 8-18 * * mon-fri", "0 0 1,15 jan,jul 0", "0 3 * * 7"]
)
def test_good_cron(tmp_path: Path, expr: str) -> None:
    path = write(tmp_path / "ok.toml", f'[schedule]\nfull_backup = "{expr}"\n')
    assert load_settings(str(path)).schedule.full_backup == expr


@given(expr=st.text())
def test_any_cron_text_is_accepted_or_refused_cleanly(expr: str) -> None:
    try:
        settings = parse_settings({"schedule": {"health_check": expr}}, "test.toml")
    except ConfigError as err:
        assert str(err).startswith("test.toml: schedule.health_check")
    else:
        assert len(settings.schedule.health_check.split()) in (5, 6, 7)


@pytest.mark.parametrize(
    ("cluster", "complaint"),
    [
        ("pool_min_size = 0", "need 1 <= pool_min_size <= pool_max_size, got 0 and 10"),
        ("pool_min_size = 12", "need 1 <= pool_min_size <= pool_max_size, got 12 and 10"),
        ("pool_min_size = 5\npool_max_size = 4", "got 5 and 4"),
        ("pool_max_size = 6", "clusters.primary.pool_max_size >= 8"),
        ("connect_timeout = 0", "clusters.primary.connect_timeout must be > 0"),
    ],
)
def test_bad_pool_sizes_and_ranges(tmp_path: Path, cluster: str, complaint: str) -> None:
    message = config_error(tmp_path, f"[clusters.primary]\n{cluster}\n")
    assert "clusters.primary" in message
    assert complaint in message


@pytest.mark.parametrize(
    ("section", "complaint"),
    [
        ("default_pool_size = 0", "pgbouncer.default_pool_size must be between 1 and"),
        ("default_pool_size = 60", "pgbouncer.max_pool_size (50), got 60"),
        ("default_reserve_pool = -1", "pgbouncer.default_reserve_pool must be between 0"),
        ("server_port = 70000", "pgbouncer.server_port must be 0"),
        ("poll_interval = 0", "pgbouncer.poll_interval must be greater than 0"),
        ("pause_timeout = -1", "pgbouncer.pause_timeout must be greater than 0"),
        ('admin_dsn = "host=x"', "pgbouncer.include_file is required"),
        ('poll_interval = "fast"', "pgbouncer.poll_interval must be a number"),
    ],
)
def test_bad_pgbouncer_settings(tmp_path: Path, section: str, complaint: str) -> None:
    assert complaint in config_error(tmp_path, f"[pgbouncer]\n{section}\n")


def test_default_cluster_must_exist(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'default_cluster = "replica"\n')
    assert "default_cluster: unknown cluster 'replica'; configured: primary" in message


def test_invalid_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in config_error(tmp_path, "read_only = \n")


# -- values ---------------------------------------------------------------------------------------


def test_full_file_becomes_frozen_typed_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "full.toml",
        """
default_cluster = "eu"
read_only = true
[clusters.eu]
dsn = "postgresql://db.eu.example:6432/shop"
app_role = "shop_app"
pool_max_size = 20
connect_timeout = 3
[clusters.us]
dsn = "host=db.us.example dbname=shop"
[lifecycle]
drain_timeout = 5
[backup]
dir = "~/gc-backups"
[schedule]
full_backup = "15 1 * * *"
""",
    )
    settings = load_settings(str(path))
    assert settings.source == str(path)
    assert settings.read_only is True
    assert settings.default_cluster == "eu"
    assert set(settings.clusters) == {"eu", "us"}
    eu = settings.cluster()
    assert (eu.app_role, eu.pool_max_size, eu.pool_min_size) == ("shop_app", 20, 1)
    assert eu.connect_timeout == 3.0 and isinstance(eu.connect_timeout, float)
    assert settings.cluster("us").app_role == "gocommerce_app"
    assert settings.lifecycle.drain_timeout == 5.0
    assert settings.backup_dir() == Path("~/gc-backups").expanduser()
    assert settings.schedule.full_backup == "15 1 * * *"
    assert settings.schedule.incremental_backup == Settings().schedule.incremental_backup
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.read_only = False  # type: ignore[misc]
    with pytest.raises(ConfigError, match="unknown cluster 'asia'; configured: eu, us"):
        settings.cluster("asia")


def test_example_config_documents_every_option_with_its_default() -> None:
    path = PROJECT_ROOT / "config.example.toml"
    settings = load_settings(str(path))
    assert dataclasses.replace(settings, source="(defaults)") == Settings()

    raw = tomllib.loads(path.read_text())
    documented = {k for k in raw if not isinstance(raw[k], dict)}
    for section, value in raw.items():
        if section == "clusters":
            documented |= {f"clusters.NAME.{k}" for k in value["primary"]}
        elif isinstance(value, dict):
            documented |= {f"{section}.{k}" for k in value}
    expected: set[str] = {"default_cluster", "read_only"}
    expected |= {f"clusters.NAME.{f.name}" for f in dataclasses.fields(ClusterSettings)}
    for field in dataclasses.fields(Settings):  # every [section] of settings
        section = getattr(Settings(), field.name)
        if dataclasses.is_dataclass(section):
            expected |= {f"{field.name}.{f.name}" for f in dataclasses.fields(section)}
    assert documented == expected


# -- search order: --config > $GOCONSOLE_CONFIG > ./config.toml > user config dir ----------------


@pytest.fixture
def candidates(tmp_path: Path) -> dict[str, Path]:
    return {
        name: write(tmp_path / name / "config.toml", f'[ui]\nenvironment = "{name}"\n')
        for name in ("explicit", "env", "cwd", "user")
    }


def test_search_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, candidates: dict[str, Path]
) -> None:
    cwd = candidates["cwd"].parent
    write(tmp_path / "xdg-config" / "goconsole" / "config.toml", '[ui]\nenvironment = "user"\n')
    monkeypatch.setenv("GOCONSOLE_CONFIG", str(candidates["env"]))

    def environment(explicit: str | None, where: Path) -> str:
        return load_settings(explicit, cwd=where).ui.environment

    assert environment(str(candidates["explicit"]), cwd) == "explicit"
    assert environment(None, cwd) == "env"
    monkeypatch.delenv("GOCONSOLE_CONFIG")
    assert environment(None, cwd) == "cwd"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert environment(None, empty) == "user"
    (tmp_path / "xdg-config" / "goconsole" / "config.toml").unlink()
    assert find_config_file(None, cwd=empty) is None
    assert load_settings(None, cwd=empty) == Settings()


def test_missing_named_files_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"config file {missing} does not exist"):
        load_settings(str(missing))
    monkeypatch.setenv("GOCONSOLE_CONFIG", str(missing))
    with pytest.raises(ConfigError, match=rf"\$GOCONSOLE_CONFIG names {missing}"):
        load_settings(None, cwd=tmp_path)


# -- connection spec: DSN precedence and secrets from the environment ----------------------------


def test_db_user_and_password_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_USER", "alice")
    monkeypatch.setenv("DB_PASSWORD", "s3cr3t-Pa55")
    spec = ConnectionSpec.resolve(ClusterSettings(dsn="postgresql://db.example:6543/shop"))
    assert spec.params() == {
        "host": "db.example",
        "port": "6543",
        "dbname": "shop",
        "user": "alice",
    }
    assert spec.password == "s3cr3t-Pa55"
    assert "s3cr3t" not in spec.conninfo
    assert spec.describe() == "alice@db.example:6543/shop"
    assert "s3cr3t" not in repr(spec.params())
    kwargs = spec.asyncpg_kwargs()
    assert (kwargs["user"], kwargs["password"], kwargs["port"]) == ("alice", "s3cr3t-Pa55", 6543)
    assert spec.libpq_env()["PGPASSWORD"] == "s3cr3t-Pa55"


def test_dsn_user_wins_and_dsn_password_is_moved_out_of_conninfo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_USER", "alice")
    spec = ConnectionSpec.resolve(ClusterSettings(dsn="postgresql://bob:inline-pw@db.example/shop"))
    assert spec.params()["user"] == "bob"
    assert spec.password == "inline-pw"
    assert "inline-pw" not in spec.conninfo
    assert "inline-pw" not in spec.describe()
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    spec = ConnectionSpec.resolve(ClusterSettings(dsn="postgresql://bob:inline-pw@db.example/shop"))
    assert spec.password == "from-env"


def test_password_env_indirection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "not-this-one")
    monkeypatch.setenv("SHOP_DB_PW", "this-one")
    spec = ConnectionSpec.resolve(
        ClusterSettings(dsn="host=db.example user=bob", password_env="SHOP_DB_PW")
    )
    assert spec.password == "this-one"
    assert "this-one" not in spec.conninfo


def test_dsn_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = ClusterSettings(dsn="postgresql://configured.example/db")
    assert ConnectionSpec.resolve(cluster).params()["host"] == "configured.example"
    monkeypatch.setenv("GOCONSOLE_DSN", "postgresql://env.example/db")
    assert ConnectionSpec.resolve(cluster).params()["host"] == "env.example"
    override = ConnectionSpec.resolve(cluster, "postgresql://flag.example/db")
    assert override.params()["host"] == "flag.example"


def test_bad_dsns_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported DSN parameter"):
        ConnectionSpec.resolve(ClusterSettings(dsn="host=x options=-csearch_path=evil"))
    with pytest.raises(ConfigError, match="invalid DSN"):
        ConnectionSpec.resolve(ClusterSettings(dsn="host='unterminated"))


def test_a_bad_pgbouncer_dsn_fails_when_the_service_is_built() -> None:
    """The pool service is built on first use; its DSN is still checked up front."""
    with pytest.raises(ConfigError, match="invalid PgBouncer admin DSN: unterminated quoted"):
        ConsoleService(Settings(), dsn="host=db.example", pgbouncer_dsn="host='unterminated")


async def test_password_is_not_in_connection_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "s3cr3t-Pa55")
    service = ConsoleService(Settings(), dsn="postgresql://bob@127.0.0.1:1/shop")
    with pytest.raises(ConnectionFailed) as err:
        await service.__aenter__()
    message = str(err.value)
    assert message.startswith("cannot connect to bob@127.0.0.1:1/shop: ")
    assert "s3cr3t" not in message
