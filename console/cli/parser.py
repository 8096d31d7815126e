"""The argument parser of every subcommand (parsing only: checks that need no database are in
``console.cli.validate``)."""

from __future__ import annotations

import argparse
from typing import Any

from console.core.errors import InvalidInput
from console.core.migrations.concurrency import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from console.version import version_text

PROG = "goconsole"
CONCURRENCY_HELP = f"tenants at once (1-{MAX_CONCURRENCY})"


class UsageError(InvalidInput):
    """argparse usage problems, reported like every other error."""


class _Version(argparse.Action):
    """``--version``: the version line, read from the package metadata only when asked for
    (every other call starts without importlib.metadata)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(
            option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS, **kwargs
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        print(version_text())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog=PROG, description="GO-Commerce tenant operations console.")
    parser.add_argument("--config", help="config file (default: search order in README)")
    parser.add_argument("--dsn", help="PostgreSQL DSN for this run (overrides config)")
    parser.add_argument("--cluster", help="cluster name from [clusters] (default: configured)")
    parser.add_argument(
        "--pgbouncer-dsn", help="PgBouncer admin console DSN for this run (overrides config)"
    )
    parser.add_argument("--read-only", action="store_true", help="refuse every mutation")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("tui", help="open the terminal console (the default without a command)")
    sub.add_parser("init", help="create/upgrade the control schema, app role and template")

    tenants = sub.add_parser("tenants", help="tenant lifecycle").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = tenants.add_parser(
        "provision", help="create tenants (or finish interrupted ones); several at once in batches"
    )
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument(
        "--from-file", metavar="FILE", help="keys, one per line (# comments; '-' reads stdin)"
    )
    p.add_argument("--name", help="display name (default: the key; only with one KEY)")
    p.add_argument(
        "--concurrency",
        type=int,
        help="tenants built at once (default: lifecycle.provision_concurrency)",
    )
    p.add_argument("--alembic", action="store_true", help="build via alembic, not the template")
    p.add_argument("--json", action="store_true")
    p = tenants.add_parser("list", help="list tenants")
    p.add_argument("--status", help="only tenants in this status")
    p.add_argument("--json", action="store_true")
    p = tenants.add_parser("show", help="one tenant: registry, tables, RLS, backups, audit")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    for action, text in (
        ("deactivate", "final backup, block access, drain, INACTIVE"),
        ("offboard", "verified backup, export audit, drop schema, ARCHIVED"),
    ):
        p = tenants.add_parser(action, help=text)
        p.add_argument("key")
        p.add_argument("--timeout", type=float, help="seconds to wait for lock holders")
        p.add_argument("--force", action="store_true", help="terminate lock holders at timeout")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--json", action="store_true")
    p = tenants.add_parser("reactivate", help="grant access again, ACTIVE")
    p.add_argument("key")

    migrate = sub.add_parser("migrate", help="tenant schema migrations").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = migrate.add_parser("status", help="tenants per revision: at head, behind or unknown")
    p.add_argument("--json", action="store_true")
    p = migrate.add_parser("runs", help="recent migration runs")
    p.add_argument("--json", action="store_true")
    for action, text in (
        ("plan", "who moves from which revision to which, and the SQL (changes nothing)"),
        ("all", "migrate every tenant (ACTIVE and INACTIVE; ARCHIVED are skipped)"),
    ):
        p = migrate.add_parser(action, help=text)
        p.add_argument("--to", help="target revision (default: head)")
        scope = p.add_mutually_exclusive_group()
        scope.add_argument("--tenants", help="comma-separated tenant keys")
        scope.add_argument("--status", help="only tenants in this status")
        p.add_argument("--json", action="store_true")
        if action == "all":
            p.add_argument(
                "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help=CONCURRENCY_HELP
            )
            p.add_argument("--lock-timeout", type=float, help="seconds per lock wait")
            p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p = migrate.add_parser("retry", help="retry the failed/busy tenants of a run")
    p.add_argument("run", nargs="?", help="run id (default: the latest run)")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help=CONCURRENCY_HELP)
    p.add_argument("--lock-timeout", type=float, help="seconds per lock wait")
    p.add_argument("--json", action="store_true")

    _add_pool_commands(sub)
    _add_backup_commands(sub)
    _add_job_commands(sub)

    p = sub.add_parser(
        "stats", help="schema statistics: largest or fastest-growing tenants, or one tenant"
    )
    p.add_argument("key", nargs="?", metavar="KEY", help="one tenant, with each table's rows")
    p.add_argument("--top", type=int, help="how many tenants (default 20)")
    p.add_argument(
        "--by", choices=("size", "growth"), help="order: size (default) or week's growth"
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("health", help="every health check; exit 1 when any is not OK")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="check again until Ctrl-C")
    p.add_argument("--interval", type=float, default=5.0, help="with --watch: seconds between")
    p.add_argument("--count", type=int, help="with --watch: stop after this many checks")

    p = sub.add_parser("audit", help="the audit log, newest first")
    p.add_argument("key", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "check-privileges",
        help="what the application role holds outside its tenant schemas; exit 1 on findings",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="embedded PostgreSQL with demo tenants")
    p.add_argument("--tenants", type=int, default=25, help="number of demo tenants")
    p.add_argument("--data-dir", help="persistent data dir (default: user data dir)")
    p.add_argument("--no-ui", action="store_true", help="print the DSN and wait for Ctrl-C")
    return parser


def _add_pool_commands(sub: Any) -> None:
    pool = sub.add_parser("pool", help="PgBouncer pools").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = pool.add_parser("show", help="every pool: clients, servers, waits, rates, limits")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=float, default=None, help="seconds between samples")
    p.add_argument("--count", type=int, help="with --watch: stop after this many samples")
    p = pool.add_parser("clients", help="client connections of one tenant's pool")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p = pool.add_parser("set-size", help="a tenant's pool size (and reserve); RELOAD")
    p.add_argument("key")
    p.add_argument("size")
    p.add_argument("--reserve", help="reserve pool (default: [pgbouncer] default_reserve_pool)")
    p = pool.add_parser("set-default", help="SET default_pool_size (live, global)")
    p.add_argument("size")
    p = pool.add_parser("pause", help="wait for in-flight transactions, then hold new ones")
    p.add_argument("key")
    p.add_argument("--timeout", type=float, help="seconds (default: [pgbouncer] pause_timeout)")
    for action, text in (
        ("resume", "undo pause"),
        ("disable", "refuse new clients"),
        ("enable", "undo disable"),
        ("reconnect", "recycle server connections"),
    ):
        p = pool.add_parser(action, help=text)
        p.add_argument("key")
    p = pool.add_parser("kill", help="drop every client and server connection at once")
    p.add_argument("key")
    p.add_argument("--keep-paused", action="store_true", help="leave the pool paused after")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = pool.add_parser(
        "sync", help="repair every alias (target, sizes) for the ACTIVE/INACTIVE tenants; RELOAD"
    )
    p.add_argument("--json", action="store_true")


def _add_backup_commands(sub: Any) -> None:
    backups = sub.add_parser("backups", help="per-tenant backups").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = backups.add_parser(
        "run", help="back up tenants: incremental where a chain can be extended, else full"
    )
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument("--all", action="store_true", help="every ACTIVE and INACTIVE tenant")
    p.add_argument(
        "--kind", choices=("full", "incremental"), help="default: incremental if possible"
    )
    p.add_argument("--concurrency", type=int, help="tenants at once (default: backup.concurrency)")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser("list", help="backups newest first (one tenant's or everyone's)")
    p.add_argument("key", nargs="?")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser("show", help="one backup: catalog row, tables, files")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser(
        "verify", help="check each tenant's newest chain: checksums, or a restore test"
    )
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument("--all", action="store_true", help="every tenant with a backup")
    p.add_argument(
        "--restore-test",
        action="store_true",
        help="restore the chain into a scratch database and compare it with the manifests",
    )
    p.add_argument("--concurrency", type=int, help="tenants at once (default: backup.concurrency)")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser("prune", help="remove the backups retention lets go, saying why")
    p.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    p.add_argument("--json", action="store_true")
    _add_restore_commands(backups)


def _add_restore_commands(backups: Any) -> None:
    p = backups.add_parser(
        "restore", help="restore one tenant to a point in time (or roll a restore back)"
    )
    p.add_argument("key")
    p.add_argument("--to", metavar="TIMESTAMP", help="ISO 8601 (no zone: UTC)")
    p.add_argument("--backup", metavar="ID", help="restore to this backup")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--keep-replaced", type=float, metavar="DAYS", help="default: backup.keep_replaced_days"
    )
    p.add_argument("--discard", action="store_true", help="drop what a failed restore left")
    p.add_argument("--rollback", action="store_true", help="switch the replaced schema back")
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for the pool's pause (default: lifecycle.drain_timeout)",
    )
    p.add_argument("--force", action="store_true", help="kill what is still running at timeout")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser("replaced", help="schemas a restore replaced, kept for rollback")
    p.add_argument("key", nargs="?")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser("purge-replaced", help="drop the replaced schemas past their keep")
    p.add_argument("--dry-run", action="store_true", help="list what would go, drop nothing")
    p.add_argument("--json", action="store_true")
    p = backups.add_parser(
        "drill", help="restore newest chains into scratch schemas, validate, record"
    )
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument("--sample", type=int, help="N random tenants (default: backup.drill_sample)")
    p.add_argument("--json", action="store_true")


def _add_job_commands(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="the embedded scheduler").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = p.add_parser(
        "run", help="run the scheduler in the foreground (for systemd) until SIGTERM or Ctrl-C"
    )
    p.add_argument("--once", metavar="JOB", help="run JOB now, once, and exit (cron, runbooks)")
    p.add_argument("--json", action="store_true", help="with --once: the run as JSON")
    jobs = sub.add_parser("jobs", help="scheduled jobs: schedule, history, run now").add_subparsers(
        dest="action", parser_class=_Parser, metavar="ACTION", required=True
    )
    p = jobs.add_parser("list", help="every job: schedule, next run, last outcome; the leader")
    p.add_argument("--json", action="store_true")
    p = jobs.add_parser("history", help="runs newest first, skipped and missed ones included")
    p.add_argument("job", nargs="?", metavar="JOB")
    p.add_argument("--outcome", choices=("running", "succeeded", "failed", "skipped", "missed"))
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true")
    p = jobs.add_parser("run", help="run a job now (audited; refused while it runs anywhere)")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--json", action="store_true")
