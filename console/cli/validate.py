"""Checks of a parsed command that need no database: they run before connecting, so bad input
never reaches it (exit 2), and destructive commands ask for confirmation here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.cli.hints import error_text
from console.config import Settings
from console.core.errors import InvalidInput
from console.core.identifiers import validate_tenant_key
from console.core.migrations.concurrency import concurrency_in_range
from console.core.tenants.registry import parse_status


def validate(args: argparse.Namespace, settings: Settings) -> None:
    """Check arguments before connecting, so bad input never reaches the database."""
    if args.command == "tenants" and args.action == "provision":
        _validate_provision(args, settings)
        return
    if getattr(args, "key", None) is not None:
        validate_tenant_key(args.key)
    if getattr(args, "status", None):
        parse_status(args.status)
    if getattr(args, "tenants", None) is not None and args.command == "migrate":
        for key in args.tenants.split(","):
            validate_tenant_key(key.strip())
    if getattr(args, "concurrency", None) is not None:
        concurrency_in_range(args.concurrency)
    lock_timeout = getattr(args, "lock_timeout", None)
    if lock_timeout is not None and not 0 < lock_timeout <= 3600:
        raise InvalidInput(f"--lock-timeout must be between 0 and 3600 seconds, got {lock_timeout}")
    if args.command == "pool":
        _validate_pool(args)
        return
    if args.command == "backups":
        _validate_backups(args)
        return
    if args.command == "stats":
        _validate_stats(args)
        return
    if args.command == "health":
        _validate_health(args)
        return
    if args.command in ("audit", "jobs") and not 1 <= getattr(args, "limit", 1) <= 100_000:
        raise InvalidInput(f"--limit must be between 1 and 100000, got {args.limit}")
    destructive = {
        "deactivate": "backs up, then revokes application access and drains",
        "offboard": "backs up, then DROPS the schema for good",
    }
    if args.command == "tenants" and args.action in destructive:
        if args.timeout is not None:
            from console.core.tenants.lifecycle import check_drain_timeout  # the command's own

            check_drain_timeout(args.timeout)
        if args.read_only:
            return  # refused later with the read-only message, without prompting
        confirm(args.action, args.key, args.yes, destructive[args.action])


def _validate_health(args: argparse.Namespace) -> None:
    """``health --watch`` needs a positive --interval; --count needs --watch."""
    if not 0 < args.interval <= 3600:
        raise InvalidInput(f"--interval must be between 0 and 3600 seconds, got {args.interval}")
    if args.count is not None and (not args.watch or args.count < 1):
        raise InvalidInput(f"--count needs --watch and a number of 1 or more, got {args.count}")


def _validate_backups(args: argparse.Namespace) -> None:
    """``backups run`` and ``verify`` need KEY… or --all (not both); ``backups list`` a sane
    --limit."""
    if args.action in ("run", "verify"):
        if bool(args.keys) == bool(args.all):
            raise InvalidInput(
                f"backups {args.action} needs tenant keys or --all (not both): e.g. "
                f"goconsole backups {args.action} acme beta, or goconsole backups "
                f"{args.action} --all"
            )
        for key in args.keys:
            validate_tenant_key(key)
    if args.action == "restore":
        from console.cli.restore import check_restore  # the command's own checks

        check_restore(args)
    if args.action == "drill" and args.keys and args.sample is not None:
        raise InvalidInput("backups drill takes tenant keys or --sample N, not both")
    if args.action == "list" and not 1 <= args.limit <= 100_000:
        raise InvalidInput(f"--limit must be between 1 and 100000, got {args.limit}")


def _validate_stats(args: argparse.Namespace) -> None:
    """``stats KEY`` is one tenant, so no --top/--by; without KEY they default to 20, size."""
    from console.core.stats.history import check_top  # the command's own

    if args.key is not None:
        if args.top is not None or args.by is not None:
            raise InvalidInput(
                "stats KEY shows one tenant: leave out --top and --by, or leave out KEY to "
                "list tenants (e.g. goconsole stats --top 10 --by growth)"
            )
        return
    args.top = 20 if args.top is None else args.top
    args.by = args.by or "size"
    try:
        check_top(args.top, args.by)
    except InvalidInput as exc:
        raise InvalidInput(f"--top: {exc}") from None


def _validate_provision(args: argparse.Namespace, settings: Settings) -> None:
    """Gather the keys (arguments, then ``--from-file``) into ``args.keys`` and check them all;
    ``args.bulk`` says whether the bulk path runs (several keys, or a file)."""
    from console.core.tenants.bulk_report import check_concurrency, check_request  # ditto

    if args.from_file is not None:
        args.keys = [*args.keys, *_read_keys(args.from_file)]
    args.bulk = args.from_file is not None or len(args.keys) > 1
    if args.name is not None and args.bulk:
        raise InvalidInput(
            f"--name names one tenant: give exactly one KEY with it (got {len(args.keys)}); "
            "bulk provisioning names each tenant after its key"
        )
    check_request(args.keys)
    if args.concurrency is not None:
        check_concurrency(args.concurrency, settings.cluster(args.cluster).pool_max_size)


def _read_keys(path: str) -> list[str]:
    """Tenant keys from a file (``-``: stdin), one per line; ``#`` starts a comment, blank
    lines are skipped; an invalid key is reported with its file and line."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read {path}: {reason}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.split("#", 1)[0].strip()
        if not key:
            continue
        try:
            keys.append(validate_tenant_key(key))
        except InvalidInput as exc:
            raise InvalidInput(
                f"{'stdin' if path == '-' else path}:{number}: {error_text(exc)}"
            ) from None
    return keys


def _validate_pool(args: argparse.Namespace) -> None:
    if args.action == "show":
        if args.interval is not None and not 0.1 <= args.interval <= 3600:
            raise InvalidInput(
                f"--interval must be between 0.1 and 3600 seconds, got {args.interval:g}"
            )
        if args.count is not None and args.count < 1:
            raise InvalidInput(f"--count must be 1 or more, got {args.count}")
    if args.action == "pause" and args.timeout is not None:
        from console.core.pools.service import check_pause_timeout  # the command's own

        check_pause_timeout(args.timeout)
    if args.action == "kill" and not args.read_only:
        confirm(args.action, args.key, args.yes, "drops every client and server connection now")


def confirm(action: str, key: str, assume_yes: bool, what: str) -> None:
    """Ask for the tenant key typed back (InvalidInput unless it matches, or --yes)."""
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"{action} {key} is destructive: pass --yes when not interactive")
    print(f"{action} {key}: {what}", file=sys.stderr)
    answer = input(f"Type the tenant key ({key}) to confirm, anything else aborts: ")
    if answer.strip() != key:
        raise InvalidInput(f"confirmation did not match {key!r}; nothing was done")
