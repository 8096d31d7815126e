"""The checks a parsed configuration must pass: ranges, settings that must agree (pool sizes
against concurrency, warn against crit), schedule expressions and age recipients. Each error
names the file and the key."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from console.core.errors import ConfigError
from console.cron import cron_problem

if TYPE_CHECKING:
    from console.config import HealthSettings, PgBouncerSettings, Settings


def check_settings(settings: Settings, source: str) -> None:
    """ConfigError naming ``source`` and the key for any value out of its range, or settings
    that contradict each other."""
    for name, cluster in settings.clusters.items():
        if not 1 <= cluster.pool_min_size <= cluster.pool_max_size:
            raise ConfigError(
                f"{source}: clusters.{name}: need 1 <= pool_min_size <= pool_max_size, "
                f"got {cluster.pool_min_size} and {cluster.pool_max_size}"
            )
        if cluster.connect_timeout <= 0:
            raise ConfigError(f"{source}: clusters.{name}.connect_timeout must be > 0")
    concurrency = settings.lifecycle.provision_concurrency
    for name, cluster in settings.clusters.items():
        if 2 * concurrency > cluster.pool_max_size:
            raise ConfigError(
                f"{source}: lifecycle.provision_concurrency ({concurrency}) needs "
                f"clusters.{name}.pool_max_size >= {2 * concurrency} "
                "(each operation holds a lock connection and a work connection)"
            )
    positive = {
        "lifecycle.drain_timeout": settings.lifecycle.drain_timeout,
        "lifecycle.lock_timeout": settings.lifecycle.lock_timeout,
        "lifecycle.provision_concurrency": settings.lifecycle.provision_concurrency,
        "ui.refresh_interval": settings.ui.refresh_interval,
        "backup.full_retention_days": settings.backup.full_retention_days,
        "backup.incremental_retention_days": settings.backup.incremental_retention_days,
        "backup.concurrency": settings.backup.concurrency,
        "backup.drill_sample": settings.backup.drill_sample,
        "scheduler.leader_poll_s": settings.scheduler.leader_poll_s,
        "pgbouncer.poll_interval": settings.pgbouncer.poll_interval,
        "pgbouncer.pause_timeout": settings.pgbouncer.pause_timeout,
        "pgbouncer.command_timeout": settings.pgbouncer.command_timeout,
        "pgbouncer.history_minutes": settings.pgbouncer.history_minutes,
        "pgbouncer.max_pool_size": settings.pgbouncer.max_pool_size,
    }
    for key, number in positive.items():
        if number <= 0:
            raise ConfigError(f"{source}: {key} must be greater than 0, got {number}")
    if settings.backup.keep_replaced_days < 0:
        raise ConfigError(
            f"{source}: backup.keep_replaced_days must be 0 or more, "
            f"got {settings.backup.keep_replaced_days}"
        )
    _check_pgbouncer(settings.pgbouncer, source)
    if settings.stats.retention_days < 8:
        raise ConfigError(
            f"{source}: stats.retention_days must be at least 8 (size growth compares with "
            f"the figures of a week before), got {settings.stats.retention_days}"
        )
    _check_backup(settings, source)
    _check_health(settings.health, source)
    for key, expr in dataclasses.asdict(settings.schedule).items():
        problem = cron_problem(expr)
        if problem:
            raise ConfigError(f"{source}: schedule.{key}: {problem}, got {expr!r}")


_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def _check_backup(settings: Settings, source: str) -> None:
    backup = settings.backup
    if not 1 <= backup.compression_level <= 22:
        raise ConfigError(
            f"{source}: backup.compression_level must be a zstd level from 1 to 22, "
            f"got {backup.compression_level}"
        )
    for key, number in (
        ("archived_retention_days", backup.archived_retention_days),
        ("stale_grace_hours", backup.stale_grace_hours),
    ):
        if number < 0:
            raise ConfigError(f"{source}: backup.{key} must be 0 or more, got {number}")
    for recipient in backup.recipients:
        if not _AGE_RECIPIENT.match(recipient):
            raise ConfigError(
                f"{source}: backup.recipients: {recipient!r} is not an age X25519 recipient "
                "(a public key from age-keygen: age1 followed by 58 letters and digits)"
            )
    for name, cluster in settings.clusters.items():
        if 2 * backup.concurrency > cluster.pool_max_size:
            raise ConfigError(
                f"{source}: backup.concurrency ({backup.concurrency}) needs "
                f"clusters.{name}.pool_max_size >= {2 * backup.concurrency} "
                "(each backup holds a lock connection and a snapshot connection)"
            )


def _check_health(health: HealthSettings, source: str) -> None:
    values = dataclasses.asdict(health)
    for key, value in values.items():
        if value < 0:
            raise ConfigError(f"{source}: health.{key} must be 0 or more, got {value}")
    for key in values:
        if "_warn" in key:
            crit = key.replace("_warn", "_crit")
            if values[key] > values[crit]:
                raise ConfigError(
                    f"{source}: health.{key} ({values[key]}) must not exceed "
                    f"health.{crit} ({values[crit]})"
                )
    for key in ("backup_max_age_hours", "sample_retention_hours", "screen_interval"):
        if values[key] <= 0:
            raise ConfigError(f"{source}: health.{key} must be greater than 0, got {values[key]}")


def _check_pgbouncer(bouncer: PgBouncerSettings, source: str) -> None:
    limit = bouncer.max_pool_size
    for key, value, low in (
        ("default_pool_size", bouncer.default_pool_size, 1),
        ("default_reserve_pool", bouncer.default_reserve_pool, 0),
    ):
        if not low <= value <= limit:
            raise ConfigError(
                f"{source}: pgbouncer.{key} must be between {low} and pgbouncer.max_pool_size "
                f"({limit}), got {value}"
            )
    if not 0 <= bouncer.server_port <= 65535:
        raise ConfigError(
            f"{source}: pgbouncer.server_port must be 0 (the cluster's port) or 1-65535, "
            f"got {bouncer.server_port}"
        )
    if bouncer.admin_dsn and not bouncer.include_file:
        raise ConfigError(
            f"{source}: pgbouncer.include_file is required when pgbouncer.admin_dsn is set "
            "(the file of tenant aliases that pgbouncer.ini %includes)"
        )
