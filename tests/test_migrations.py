"""Migrations across every tenant (issue 4): plan, status, dry run, run, failures and retry,
lock timeouts, busy tenants, a runner killed mid-run, INACTIVE/ARCHIVED, ``--to``, refusals.

Real PostgreSQL only (18 and 15 through the parametrized fixtures). Tenants at an older revision
are built the way they were built when that revision was head: the schema is created by alembic
up to that revision, then granted and seeded as provisioning does. (Downgrading a head tenant to
0001 would drop and later re-add the 0002 columns at new attribute numbers, so its catalog could
never equal a fresh tenant's.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from helpers import PATIENCE_S, PROJECT_ROOT, TableGate, wait_until

from console.config import ClusterSettings, Settings
from console.core.actor import Actor
from console.core.errors import InvalidInput, ReadOnlyMode, TenantBusy
from console.core.events import Phase, StepEvent
from console.core.hints import Field, LowerConcurrency
from console.core.identifiers import TEMPLATE_SCHEMA, qualified, quote_ident
from console.core.locks import TENANT_LOCK_CLASS
from console.core.migrations import run as migrations
from console.core.migrations.plan import MigrationPlan, RevisionState
from console.core.migrations.records import LandedRecorder
from console.core.migrations.run import RUN_LOCK, RunProgress
from console.core.migrations.tree import head_revision, script_directory
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.schema import catalog_fingerprint, grant_access, seed_initial_data
from console.core.tenants.template import TEMPLATE_TENANT_ID

R1 = "0001_tenant_base"
R2 = "0002_customer_contact"
R3 = "0003_unique_customer_email"
R4 = "0004_orders_placed_at_index"
R5 = "0005_backup_change_tracking"
HEAD = head_revision("tenant")
KNOWN = (R1, R2, R3, R4, R5)

Fingerprint = dict[str, list[Any]]


# -- helpers -------------------------------------------------------------------------------------


async def tenant_at(
    svc: ConsoleService, su: asyncpg.Connection, key: str, revision: str = HEAD
) -> Tenant:
    """A provisioned tenant whose schema is at ``revision``, built as it was when ``revision``
    was head: alembic up to ``revision``, then grants and initial data as provisioning does."""
    tenant = await svc.provision(key)
    if revision != HEAD:
        await su.execute(f"DROP SCHEMA {quote_ident(tenant.schema_name)} CASCADE")
        await asyncio.to_thread(
            svc.alembic.upgrade_tenant, tenant.schema_name, str(tenant.id), revision
        )
        async with svc.db.acquire() as conn, conn.transaction():
            await grant_access(conn, tenant.schema_name, svc.app_role)
            await seed_initial_data(conn, tenant.schema_name, tenant.id)
    assert await revision_of(su, tenant) == revision
    return tenant


async def revision_of(su: asyncpg.Connection, tenant: Tenant) -> str | None:
    value: str | None = await su.fetchval(
        f"SELECT version_num FROM {qualified(tenant.schema_name, 'schema_version')}"
    )
    return value


async def revisions_by_key(su: asyncpg.Connection) -> dict[str, str | None]:
    """Every registry tenant's revision, read schema by schema (the slow, obvious way)."""
    result: dict[str, str | None] = {}
    for row in await su.fetch("SELECT key, schema_name FROM public.tenants ORDER BY key"):
        present = await su.fetchval(
            "SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL",
            row["schema_name"],
        )
        result[row["key"]] = (
            await su.fetchval(
                f"SELECT version_num FROM {quote_ident(row['schema_name'])}.schema_version"
            )
            if present
            else None
        )
    return result


async def fingerprint(su: asyncpg.Connection, tenant: Tenant) -> Fingerprint:
    return await catalog_fingerprint(su, tenant.schema_name, tenant.id)


async def add_customers(su: asyncpg.Connection, tenant: Tenant, *emails: str) -> None:
    """Insert customers under the tenant's row-level-security context."""
    async with su.transaction():
        await su.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id))
        for i, email in enumerate(emails):
            await su.execute(
                f"INSERT INTO {qualified(tenant.schema_name, 'customers')} (email, full_name) "
                "VALUES ($1, $2)",
                email,
                f"customer {i}",
            )


async def fix_duplicates(su: asyncpg.Connection, tenant: Tenant) -> None:
    """Give the upper-case duplicate its own address."""
    async with su.transaction():
        await su.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id))
        await su.execute(
            f"UPDATE {qualified(tenant.schema_name, 'customers')} "
            "SET email = 'other-' || lower(email) WHERE email <> lower(email)"
        )


async def emails(su: asyncpg.Connection, tenant: Tenant) -> list[str]:
    async with su.transaction():
        await su.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(tenant.id))
        rows = await su.fetch(
            f"SELECT email FROM {qualified(tenant.schema_name, 'customers')} ORDER BY email"
        )
    return [r["email"] for r in rows]


async def index_def(su: asyncpg.Connection, tenant: Tenant, index: str) -> str | None:
    value: str | None = await su.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
        tenant.schema_name,
        index,
    )
    return value


async def run_rows(su: asyncpg.Connection, run_id: uuid.UUID) -> dict[str, asyncpg.Record]:
    rows = await su.fetch(
        "SELECT t.key, r.* FROM public.migration_run_tenants r "
        "JOIN public.tenants t ON t.id = r.tenant_id WHERE r.run_id = $1",
        run_id,
    )
    return {r["key"]: r for r in rows}


async def run_status(su: asyncpg.Connection, run_id: uuid.UUID | str) -> str:
    value: str = await su.fetchval(
        "SELECT status FROM public.migration_runs WHERE id = $1", uuid.UUID(str(run_id))
    )
    return value


async def apply_rows(su: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Each tenant's one ``migrate.apply`` audit row's details (fails on a second row)."""
    rows = await su.fetch(
        "SELECT t.key, a.details FROM public.tenant_audit_log a "
        "JOIN public.tenants t ON t.id = a.tenant_id WHERE a.action_type = 'migrate.apply'"
    )
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), f"a tenant has several migrate.apply rows: {keys}"
    return {r["key"]: r["details"] for r in rows}


async def count_runs(su: asyncpg.Connection) -> int:
    value: int = await su.fetchval("SELECT count(*) FROM public.migration_runs")
    return value


async def schema_step_method(su: asyncpg.Connection, tenant: Tenant) -> str:
    details = await su.fetchval(
        "SELECT details FROM public.tenant_audit_log WHERE tenant_id = $1 "
        "AND action_type = 'provision.schema' ORDER BY action_timestamp DESC LIMIT 1",
        tenant.id,
    )
    assert details is not None, f"no provision.schema audit row for {tenant.key}"
    method: str = details["method"]
    return method


class Recorder:
    """Collects a run's progress snapshots and events."""

    def __init__(self) -> None:
        self.events: list[StepEvent] = []
        self.snapshots: list[tuple[int, int, int, int]] = []

    def progress(self, state: RunProgress) -> None:
        self.snapshots.append((state.done, state.failed, state.skipped, state.remaining))

    def sink(self, event: StepEvent) -> None:
        self.events.append(event)


async def migrate(
    svc: ConsoleService,
    target: str | None = None,
    keys: list[str] | None = None,
    concurrency: int = 2,
    recorder: Recorder | None = None,
    lock_timeout_s: float | None = None,
) -> RunProgress:
    """Plan and run, like ``migrate all`` (``--lock-timeout``: ``lock_timeout_s``); a run that
    does not finish in PATIENCE_S fails."""
    rec = recorder or Recorder()
    plan = await svc.migrations.plan(target, keys)
    try:
        return await asyncio.wait_for(
            svc.migrations.run(
                plan, concurrency, rec.progress, rec.sink, lock_timeout_s=lock_timeout_s
            ),
            PATIENCE_S,
        )
    except TimeoutError:
        pytest.fail(f"the migration run did not finish within {PATIENCE_S:g}s (hung)")


async def retry(svc: ConsoleService, run_id: uuid.UUID, concurrency: int = 2) -> RunProgress:
    """``migrate retry RUN`` through the service."""
    target, keys, _ = await svc.migrations.run_failures(str(run_id))
    assert keys, "nothing to retry"
    return await migrate(svc, target, keys, concurrency)


def plan_groups(plan: MigrationPlan) -> list[tuple[str, str, list[str], str]]:
    return [(g.from_rev, g.to_rev, [t.key for t in g.tenants], g.method) for g in plan.groups]


@dataclasses.dataclass
class Cli:
    """``python -m console --config ... --dsn DSN`` as a real subprocess."""

    dsn: str
    config: Path

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "console",
            "--config",
            str(self.config),
            "--dsn",
            self.dsn,
            *args,
        ]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            timeout=120,
            check=False,
        )


@pytest.fixture
def cli(database_dsn: str, settings: Settings, tmp_path: Path) -> Cli:
    config = tmp_path / "migrate-cli.toml"
    config.write_text(f'[backup]\ndir = "{settings.backup_dir()}"\n')
    return Cli(database_dsn, config)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("goconsole: error: "), lines[0]
    return lines[0]


# -- a mixed fleet to head -----------------------------------------------------------------------


async def test_mixed_fleet_to_head_with_status_plan_dry_run_and_state_rules(
    service: ConsoleService, su: asyncpg.Connection, cli: Cli
) -> None:
    at = {
        "a1": R1,
        "b1": R1,
        "c2": R2,
        "d3": R3,
        "e3": R3,
        "f4": HEAD,
        "idle2": R2,  # INACTIVE: migrated
        "gone3": R3,  # ARCHIVED: skipped
    }
    tenants = {key: await tenant_at(service, su, key, rev) for key, rev in at.items()}
    await service.deactivate("idle2", timeout=5)
    await service.offboard("gone3", timeout=5)
    # The template is still at the old head (as after deploying a console with a new revision).
    await asyncio.to_thread(
        service.alembic.downgrade_tenant, TEMPLATE_SCHEMA, str(TEMPLATE_TENANT_ID), R3
    )

    # -- status agrees with reality (ARCHIVED tenants are not counted) --
    reality = await revisions_by_key(su)
    assert reality["gone3"] is None
    status = (await service.migrations.status()).as_json()
    assert status["head"] == HEAD
    assert status["revisions"] == [
        {"revision": R1, "tenants": 2, "at_head": False, "state": "behind"},
        {"revision": R2, "tenants": 2, "at_head": False, "state": "behind"},
        {"revision": R3, "tenants": 2, "at_head": False, "state": "behind"},
        {"revision": HEAD, "tenants": 1, "at_head": True, "state": "head"},
    ]
    assert status["behind"] == 6
    assert status["unknown"] == 0
    counted = {k: v for k, v in reality.items() if k != "gone3"}
    for row in status["revisions"]:
        assert row["tenants"] == sum(1 for v in counted.values() if v == row["revision"])
    cli_status = cli("migrate", "status", "--json")
    assert cli_status.returncode == 0, cli_status.stderr
    assert json.loads(cli_status.stdout) == status

    # -- the plan: groups by starting revision, pre-rendered SQL, skips explained --
    plan = await service.migrations.plan()
    assert plan.target == HEAD
    assert plan_groups(plan) == [
        (R1, HEAD, ["a1", "b1"], "sql"),
        (R2, HEAD, ["c2", "idle2"], "sql"),
        (R3, HEAD, ["d3", "e3"], "sql"),
    ]
    assert [t.key for t in plan.at_target] == ["f4"]
    assert [(t.key, reason) for t, reason in plan.skipped] == [
        ("gone3", "status ARCHIVED: not migrated")
    ]
    assert plan.pending == 6
    sql_by_group = {g.from_rev: g.sql or "" for g in plan.groups}
    assert "ALTER TABLE customers ADD COLUMN phone" in sql_by_group[R1]
    assert "ADD COLUMN phone" not in sql_by_group[R2]
    assert "CREATE UNIQUE INDEX idx_customers_email" in sql_by_group[R2]
    assert "CREATE UNIQUE INDEX" not in sql_by_group[R3]
    assert "CREATE INDEX idx_orders_placed_at" in sql_by_group[R3]

    # -- dry runs change nothing --
    cli_plan = cli("migrate", "plan", "--json")
    assert cli_plan.returncode == 0, cli_plan.stderr
    assert json.loads(cli_plan.stdout) == plan.as_json()
    dry = cli("migrate", "all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"target {HEAD}: 6 tenant(s) to migrate, 1 already there, 1 skipped" in dry.stdout
    assert f"== {R1} -> {HEAD}: 2 tenant(s), method sql" in dry.stdout
    assert 'SET LOCAL search_path TO "<tenant schema>";' in dry.stdout
    assert "skipped gone3: status ARCHIVED: not migrated" in dry.stdout
    assert await revisions_by_key(su) == reality
    assert await count_runs(su) == 0
    assert (
        await su.fetchval(
            "SELECT count(*) FROM public.tenant_audit_log WHERE action_type LIKE 'migrate.%'"
        )
        == 0
    )

    # -- the run --
    rec = Recorder()
    state = await migrate(service, recorder=rec)
    assert (state.total, state.done, state.failed, state.skipped) == (6, 6, 0, 0)
    assert state.failures == {}
    assert rec.snapshots[-1] == (6, 0, 0, 0)
    assert [e.step for e in rec.events if e.tenant is None][:2] == ["control", "control"]
    assert sorted(e.tenant for e in rec.events if e.phase is Phase.DONE and e.tenant) == [
        "a1",
        "b1",
        "c2",
        "d3",
        "e3",
        "idle2",
    ]
    after = await revisions_by_key(su)
    assert after == {**{k: HEAD for k in at}, "gone3": None}
    assert await run_status(su, state.run_id) == "succeeded"
    rows = await run_rows(su, state.run_id)
    assert {k: (r["from_rev"], r["to_rev"], r["status"]) for k, r in rows.items()} == {
        k: (at[k], HEAD, "succeeded") for k in ("a1", "b1", "c2", "d3", "e3", "idle2")
    }
    assert all(r["error"] is None and r["duration_ms"] > 0 for r in rows.values())
    audited = await su.fetch(
        "SELECT t.key, a.details FROM public.tenant_audit_log a JOIN public.tenants t "
        "ON t.id = a.tenant_id WHERE a.action_type = 'migrate.apply'"
    )
    assert sorted((r["key"], r["details"]["from"], r["details"]["method"]) for r in audited) == [
        (k, at[k], "sql") for k in ("a1", "b1", "c2", "d3", "e3", "idle2")
    ]
    assert (await service.migrations.status()).behind == 0
    assert (await service.migrations.status()).as_json()["revisions"] == [
        {"revision": HEAD, "tenants": 7, "at_head": True, "state": "head"}
    ]

    # -- the template was brought to head at run start: a new tenant is cloned at head --
    fresh = await service.provision("fresh")
    assert await schema_step_method(su, fresh) == "clone"
    assert await revision_of(su, fresh) == HEAD
    expected = await fingerprint(su, fresh)
    assert len(expected["indexes"]) > 10 and expected["revision"] == [True, HEAD]
    await service.reactivate("idle2")  # INACTIVE tenants lack the app role's schema usage
    for key in at:
        if key != "gone3":
            assert await fingerprint(su, tenants[key]) == expected, key
    assert (await service.tenants(TenantStatus.ARCHIVED))[0].key == "gone3"

    # -- a no-op run: nothing to do, nothing touched --
    plan = await service.migrations.plan()
    assert plan.pending == 0 and len(plan.at_target) == 8
    noop = await migrate(service)
    assert (noop.total, noop.done, noop.failed, noop.skipped) == (0, 0, 0, 0)
    assert await run_status(su, noop.run_id) == "succeeded"


async def test_status_and_plan_survive_a_schema_dropped_while_they_read(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    await tenant_at(service, su, "stays", R3)
    leaving = await tenant_at(service, su, "leaving", R3)
    version_table = qualified(leaving.schema_name, "schema_version")
    dropper = await asyncpg.connect(database_dsn)
    try:
        tx = dropper.transaction()
        await tx.start()
        # An offboarding drops the schema: its version table is still listed in the catalog for
        # everyone else until the drop commits, and reading it waits for the drop's lock.
        await dropper.execute(f"DROP SCHEMA {quote_ident(leaving.schema_name)} CASCADE")
        reading = asyncio.create_task(service.migrations.status())

        async def alive() -> None:
            if reading.done():
                pytest.fail(f"status ended before the drop committed: {reading.result()}")

        await wait_until(
            lambda: su.fetchval(
                "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
                version_table,
            ),
            "status to wait for the dropped schema's version table",
            alive,
        )
        await tx.commit()
        status = (await asyncio.wait_for(reading, PATIENCE_S)).as_json()
    finally:
        await dropper.close()
    # A tenant without a version row is unknown, as plan has it (skipped), never behind.
    assert status["revisions"] == [
        {"revision": R3, "tenants": 1, "at_head": False, "state": "behind"},
        {"revision": "(none)", "tenants": 1, "at_head": False, "state": "unknown"},
    ]
    assert (status["behind"], status["unknown"]) == (1, 1)
    plan = await service.migrations.plan()
    assert plan_groups(plan) == [(R3, HEAD, ["stays"], "sql")]
    assert [(t.key, r) for t, r in plan.skipped] == [("leaving", "schema or version table missing")]


async def test_offline_unsafe_revision_runs_through_alembic_in_worker_processes(
    service: ConsoleService, su: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revision marked ``OFFLINE_SAFE = False`` (here R4, marked in this process only: the
    worker processes load the real module and run it online) is planned for alembic and run by
    the process pool, with the same records, audit and result as the SQL path."""
    reference = await service.provision("reference")
    tenants = [await tenant_at(service, su, key, R3) for key in ("u1", "u2", "u3")]
    module = script_directory("tenant").get_revision(R4).module
    monkeypatch.setattr(module, "OFFLINE_SAFE", False, raising=False)

    plan = await service.migrations.plan()
    assert plan_groups(plan) == [(R3, HEAD, ["u1", "u2", "u3"], "alembic")]
    assert plan.groups[0].reason == f"revision(s) {R4} cannot be rendered offline"
    assert plan.as_json()["groups"][0]["method"] == "alembic"

    state = await migrate(service, concurrency=2)
    assert (state.done, state.failed, state.skipped) == (3, 0, 0)
    expected = await fingerprint(su, reference)
    for tenant in tenants:
        assert await revision_of(su, tenant) == HEAD
        assert await fingerprint(su, tenant) == expected
    rows = await su.fetch(
        "SELECT t.key, r.status, a.details->>'method' AS method "
        "FROM public.migration_run_tenants r JOIN public.tenants t ON t.id = r.tenant_id "
        "JOIN public.tenant_audit_log a ON a.tenant_id = r.tenant_id "
        "AND a.action_type = 'migrate.apply' WHERE r.run_id = $1 ORDER BY t.key",
        state.run_id,
    )
    assert [tuple(r) for r in rows] == [(k, "succeeded", "alembic") for k in ("u1", "u2", "u3")]


async def test_to_an_intermediate_revision_moves_tenants_only_that_far(
    service: ConsoleService, su: asyncpg.Connection, cli: Cli
) -> None:
    old = await tenant_at(service, su, "old", R1)
    mid = await tenant_at(service, su, "mid", R2)
    new = await tenant_at(service, su, "new", HEAD)
    ref3 = await fingerprint(su, await tenant_at(service, su, "ref", R3))

    done = cli("migrate", "all", "--to", R3, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    assert await revision_of(su, old) == R3
    assert await revision_of(su, mid) == R3
    assert await revision_of(su, new) == HEAD
    assert await fingerprint(su, old) == ref3
    assert await fingerprint(su, mid) == ref3
    assert await index_def(su, old, "idx_orders_placed_at") is None
    assert await su.fetchval("SELECT target FROM public.migration_runs") == R3

    plan = await service.migrations.plan(R3)
    assert plan.pending == 0
    assert [t.key for t in plan.at_target] == ["mid", "old", "ref"]
    assert [(t.key, r) for t, r in plan.skipped] == [
        ("new", f"at {HEAD}, ahead of {R3}: no downgrades")
    ]


# -- one classification: head, behind, unknown -----------------------------------------------------


async def test_a_revision_the_code_does_not_know_is_unknown_everywhere(
    service: ConsoleService, su: asyncpg.Connection, cli: Cli
) -> None:
    """status and plan classify alike: a tenant whose version row names a revision outside
    this console's tree is unknown (not migrated), never behind."""
    old = await tenant_at(service, su, "old", R2)
    await tenant_at(service, su, "top", HEAD)
    alien = await tenant_at(service, su, "alien", HEAD)
    await su.execute(
        f"UPDATE {qualified(alien.schema_name, 'schema_version')} SET version_num = '0099_future'"
    )

    status = await service.migrations.status()
    assert (status.behind, status.unknown) == (1, 1)
    assert [(r.revision, r.tenants, r.state, r.at_head) for r in status.revisions] == [
        (R2, 1, RevisionState.BEHIND, False),
        (HEAD, 1, RevisionState.AT_TARGET, True),
        ("0099_future", 1, RevisionState.UNKNOWN, False),
    ]
    plan = await service.migrations.plan()
    assert plan_groups(plan) == [(R2, HEAD, [old.key], "sql")]
    assert [(t.key, reason) for t, reason in plan.skipped] == [
        ("alien", "unknown revision 0099_future")
    ]

    text = cli("migrate", "status")
    assert text.returncode == 0, text.stderr
    states = {line.split()[0]: line.split()[-1] for line in text.stdout.splitlines()[1:-1]}
    assert states == {R2: "behind", HEAD: "head", "0099_future": "unknown"}
    assert text.stdout.splitlines()[-1].startswith(
        f"head {HEAD}; 1 tenant(s) behind, 1 at an unknown revision"
    )
    as_json = cli("migrate", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == status.as_json()


# -- a failing tenant ----------------------------------------------------------------------------


async def test_failing_tenant_is_rolled_back_and_recorded_then_retry_completes_it(
    service: ConsoleService, su: asyncpg.Connection, cli: Cli
) -> None:
    good = [await tenant_at(service, su, key, R2) for key in ("good1", "good2", "good3")]
    bad1 = await tenant_at(service, su, "bad1", R2)
    bad2 = await tenant_at(service, su, "bad2", R2)
    for bad in (bad1, bad2):
        await add_customers(su, bad, "A@x.com", "a@x.com", "b@x.com")
    ref2 = await fingerprint(su, good[0])
    assert await fingerprint(su, bad1) == ref2

    state = await migrate(service)
    assert (state.done, state.failed, state.skipped) == (3, 2, 0)
    for bad in (bad1, bad2):
        error = state.failures[bad.key]
        assert "23505" in error and "idx_customers_email" in error, error
        # rolled back as a whole: old revision, old index, data migration undone, same catalog
        assert await revision_of(su, bad) == R2
        assert await index_def(su, bad, "idx_customers_email") == (
            f"CREATE INDEX idx_customers_email ON {bad.schema_name}.customers USING btree (email)"
        )
        assert await index_def(su, bad, "idx_orders_placed_at") is None
        assert await emails(su, bad) == ["A@x.com", "a@x.com", "b@x.com"]
        assert await fingerprint(su, bad) == ref2
    for tenant in good:
        assert await revision_of(su, tenant) == HEAD
    rows = await run_rows(su, state.run_id)
    assert {k: r["status"] for k, r in rows.items()} == {
        "good1": "succeeded",
        "good2": "succeeded",
        "good3": "succeeded",
        "bad1": "failed",
        "bad2": "failed",
    }
    assert rows["bad1"]["error"] == state.failures["bad1"]
    assert rows["bad1"]["duration_ms"] is not None
    assert await run_status(su, state.run_id) == "failed"
    target, keys, errors = await service.migrations.run_failures(str(state.run_id))
    assert (target, keys) == (HEAD, ["bad1", "bad2"])
    assert errors["bad2"] == state.failures["bad2"]
    assert await service.migrations.run_failures(None) == (target, keys, errors)

    # fix one tenant, retry through the service: it completes, the other fails again
    await fix_duplicates(su, bad1)
    second = await retry(service, state.run_id)
    assert (second.total, second.done, second.failed) == (2, 1, 1)
    assert await revision_of(su, bad1) == HEAD
    assert await emails(su, bad1) == ["a@x.com", "b@x.com", "other-a@x.com"]
    assert await revision_of(su, bad2) == R2

    # retry through the CLI: still broken -> exit 1 naming the retry; fixed -> done
    again = cli("migrate", "retry", str(second.run_id))
    assert again.returncode == 1, again.stderr
    assert "goconsole migrate retry " in again.stderr
    assert "bad2:" in again.stdout and "23505" in again.stdout
    third = json.loads(cli("migrate", "runs", "--json").stdout)[0]
    assert (third["failed"], third["status"]) == (1, "failed")
    await fix_duplicates(su, bad2)
    fixed = cli("migrate", "retry", third["id"], "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["succeeded"] == 1
    assert await revision_of(su, bad2) == HEAD
    head_fp = await fingerprint(su, good[0])
    for tenant in (*good, bad1, bad2):
        assert await fingerprint(su, tenant) == head_fp
    nothing = cli("migrate", "retry", json.loads(cli("migrate", "runs", "--json").stdout)[0]["id"])
    assert nothing.returncode == 0 and "nothing to retry" in nothing.stdout


async def test_audit_rows_keep_odd_actor_names_verbatim(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    # The per-tenant script inlines the actor as SQL literals: quotes and backslashes must
    # arrive as they are (and never end the literal).
    tenant = await tenant_at(service, su, "quoted", R3)
    service.audit_log.actor = Actor("o'brien\\ops", "host'); DROP TABLE x; --", "10.0.0.7")
    state = await migrate(service)
    assert (state.done, state.failed) == (1, 0), state.failures
    row = await su.fetchrow(
        "SELECT actor, actor_host, actor_address, details FROM public.tenant_audit_log "
        "WHERE tenant_id = $1 AND action_type = 'migrate.apply'",
        tenant.id,
    )
    assert (row["actor"], row["actor_host"], row["actor_address"]) == (
        "o'brien\\ops",
        "host'); DROP TABLE x; --",
        "10.0.0.7",
    )
    assert {k: row["details"][k] for k in ("run", "from", "to", "method")} == {
        "run": str(state.run_id),
        "from": R3,
        "to": HEAD,
        "method": "sql",
    }
    assert row["details"]["duration_ms"] >= 0


async def test_a_tenant_moved_since_the_plan_is_refused_untouched(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    moved = await tenant_at(service, su, "moved", R2)
    other = await tenant_at(service, su, "other", R2)
    plan = await service.migrations.plan()
    assert plan_groups(plan) == [(R2, HEAD, ["moved", "other"], "sql")]
    # someone brings one tenant forward by hand after the plan was made
    await asyncio.to_thread(service.alembic.upgrade_tenant, moved.schema_name, str(moved.id), R3)
    before = await fingerprint(su, moved)
    rec = Recorder()
    state = await asyncio.wait_for(
        service.migrations.run(plan, 2, rec.progress, rec.sink), PATIENCE_S
    )
    assert (state.done, state.failed) == (1, 1)
    assert state.failures["moved"].startswith(
        f"tenant is at {R3}, not at {R2} as planned (plan again)"
    ), state.failures["moved"]
    assert await fingerprint(su, moved) == before  # nothing of the stale plan was applied
    assert await revision_of(su, other) == HEAD
    again = await retry(service, state.run_id)  # a retry plans afresh: 0003 -> head
    assert (again.done, again.failed) == (1, 0)
    assert await revision_of(su, moved) == HEAD


async def test_every_tenant_failing_with_as_many_workers_as_pool_connections(
    make_service, settings: Settings, su: asyncpg.Connection
) -> None:
    # Each worker holds a pooled connection and the run lock holds one more: with every
    # connection taken, recording a failure must not need another one.
    small = dataclasses.replace(settings, clusters={"primary": ClusterSettings(pool_max_size=4)})
    svc = await make_service(settings=small)
    await svc.init()
    bad = [await tenant_at(svc, su, f"bad{i}", R2) for i in range(6)]
    for tenant in bad:
        await add_customers(su, tenant, "A@x.com", "a@x.com")
    with pytest.raises(InvalidInput, match=r"^concurrency 4 needs 5 connections") as err:
        await migrate(svc, concurrency=4)
    assert (err.value.field, err.value.hint) == (Field.CONCURRENCY, LowerConcurrency(3))
    state = await migrate(svc, concurrency=3)
    assert (state.done, state.failed) == (0, 6)
    rows = await run_rows(su, state.run_id)
    assert {r["status"] for r in rows.values()} == {"failed"}


# -- locks: lock timeout, busy tenants ------------------------------------------------------------


async def test_lock_timeout_fails_only_the_locked_tenant(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    tenants = [await tenant_at(service, su, key, R3) for key in ("la", "lb", "lc")]
    locked = tenants[1]
    blocker = await asyncpg.connect(database_dsn)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(
            f"LOCK TABLE {qualified(locked.schema_name, 'orders')} IN ACCESS EXCLUSIVE MODE"
        )
        state = await migrate(service, concurrency=2, lock_timeout_s=0.3)
        await tx.rollback()
    finally:
        await blocker.close()
    assert (state.done, state.failed, state.skipped) == (2, 1, 0)
    error = state.failures["lb"]
    assert "lock timeout" in error and "55P03" in error, error
    assert (await run_rows(su, state.run_id))["lb"]["error"] == error
    assert await revision_of(su, locked) == R3
    assert await index_def(su, locked, "idx_orders_placed_at") is None
    assert [await revision_of(su, t) for t in tenants] == [HEAD, R3, HEAD]

    again = await retry(service, state.run_id)
    assert (again.done, again.failed) == (1, 0)
    assert await revision_of(su, locked) == HEAD


async def test_lock_timeout_names_the_blocking_backend(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    """The failure says who held the table: pid, user, application, query start; the run's
    record (``migrate runs``/``retry``) and the progress events carry the same text."""
    tenant = await tenant_at(service, su, "lk", R3)
    conn = await asyncpg.connect(database_dsn, server_settings={"application_name": "etl_nightly"})
    gate = TableGate(conn)
    try:
        await gate.close([qualified(tenant.schema_name, "orders")])
        holder_pid = conn.get_server_pid()
        rec = Recorder()
        state = await migrate(service, concurrency=1, recorder=rec, lock_timeout_s=0.2)
    finally:
        await gate.open()
        await conn.close()
    assert (state.done, state.failed) == (0, 1)
    error = state.failures["lk"]
    assert "lock timeout" in error and "55P03" in error, error
    assert f"blocked by backend pid {holder_pid} (" in error, error
    assert "application etl_nightly" in error and "user postgres" in error, error
    assert "query started " in error and "RowExclusiveLock on orders" in error, error
    assert (await run_rows(su, state.run_id))["lk"]["error"] == error
    failed = [e.message for e in rec.events if e.tenant == "lk" and e.phase is Phase.FAILED]
    assert failed == [error]
    _, _, errors = await service.migrations.run_failures(str(state.run_id))
    assert errors == {"lk": error}
    assert await revision_of(su, tenant) == R3


async def test_lost_connection_fails_that_tenant_and_the_run_goes_on(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    tenants = [await tenant_at(service, su, key, R3) for key in ("ca", "cb", "cc", "cd")]
    orders = qualified(tenants[1].schema_name, "orders")
    blocker = await asyncpg.connect(database_dsn)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(f"LOCK TABLE {orders} IN ACCESS EXCLUSIVE MODE")
        run = asyncio.create_task(migrate(service, concurrency=1, lock_timeout_s=60))

        async def alive() -> None:
            if run.done():
                pytest.fail(f"the run ended early: {run.result()}")

        # One worker, key order: ca is done, cb waits for its table. Its backend dies (an
        # operator's pg_terminate_backend, a crashed backend): the worker must go on.
        waiter = await wait_until(
            lambda: su.fetchval(
                "SELECT pid FROM pg_locks WHERE relation = $1::regclass AND NOT granted", orders
            ),
            "the runner to wait for the locked table",
            alive,
        )
        assert await su.fetchval("SELECT pg_terminate_backend($1, 30000)", waiter)
        state = await run
        await tx.rollback()
    finally:
        await blocker.close()
    assert (state.done, state.failed) == (3, 1), state.failures
    assert state.failures["cb"].startswith("connection lost: "), state.failures["cb"]
    assert "terminating connection" in state.failures["cb"], state.failures["cb"]
    rows = await run_rows(su, state.run_id)
    assert {k: r["status"] for k, r in rows.items()} == {
        "ca": "succeeded",
        "cb": "failed",
        "cc": "succeeded",
        "cd": "succeeded",
    }
    assert rows["cb"]["error"] == state.failures["cb"]
    assert [await revision_of(su, t) for t in tenants] == [HEAD, R3, HEAD, HEAD]
    assert await index_def(su, tenants[1], "idx_orders_placed_at") is None


async def test_busy_tenant_is_retried_at_the_end_and_skipped_if_still_busy(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    tenants = [await tenant_at(service, su, key, R3) for key in ("ba", "bb", "bc")]
    holder = await asyncio.to_thread(psycopg.connect, database_dsn, autocommit=True)
    try:
        # 1. Busy all along: tried, retried at the end, reported skipped_busy.
        holder.execute("SELECT pg_advisory_lock(%s, hashtext('bb'))", (TENANT_LOCK_CLASS,))
        rec = Recorder()
        state = await migrate(service, concurrency=1, recorder=rec)
        assert (state.done, state.failed, state.skipped) == (2, 0, 1)
        assert state.failures == {"bb": "busy with another operation (skipped)"}
        assert [e.step for e in rec.events if e.phase is Phase.INFO] == ["retry_busy"]
        rows = await run_rows(su, state.run_id)
        assert {k: r["status"] for k, r in rows.items()} == {
            "ba": "succeeded",
            "bb": "skipped_busy",
            "bc": "succeeded",
        }
        assert rows["bb"]["error"] == "busy with another operation"
        assert await run_status(su, state.run_id) != "succeeded"
        assert [await revision_of(su, t) for t in tenants] == [HEAD, R3, HEAD]
        runs = await service.migrations.runs()
        assert (runs[0].succeeded, runs[0].skipped_busy) == (2, 1)

        # 2. Released: the retry of that run completes it.
        holder.execute("SELECT pg_advisory_unlock_all()")
        again = await retry(service, state.run_id)
        assert (again.done, again.skipped) == (1, 0)
        assert await revision_of(su, tenants[1]) == HEAD

        # 3. Busy when first tried, free by the end of the run: the end-of-run retry takes it.
        for tenant in tenants:
            await asyncio.to_thread(
                service.alembic.downgrade_tenant, tenant.schema_name, str(tenant.id), R3
            )
        holder.execute("SELECT pg_advisory_lock(%s, hashtext('bb'))", (TENANT_LOCK_CLASS,))
        released: list[int] = []

        def progress(state: RunProgress) -> None:
            # Both other tenants are done (bb was tried between them): release, synchronously,
            # before the runner can reach its end-of-run retry.
            if state.done == 2 and not released:
                holder.execute("SELECT pg_advisory_unlock_all()")
                released.append(state.done)

        plan = await service.migrations.plan()
        events: list[StepEvent] = []
        third = await asyncio.wait_for(
            service.migrations.run(plan, 1, progress, events.append), PATIENCE_S
        )
        assert released == [2]
        assert (third.done, third.failed, third.skipped) == (3, 0, 0)
        assert [e.step for e in events if e.phase is Phase.INFO] == ["retry_busy"]
        assert [await revision_of(su, t) for t in tenants] == [HEAD, HEAD, HEAD]
    finally:
        await asyncio.to_thread(holder.close)


# -- a runner killed mid-run ---------------------------------------------------------------------


async def test_killed_runner_leaves_no_half_migrated_tenant_and_rerun_completes(
    service: ConsoleService, su: asyncpg.Connection, cli: Cli, database_dsn: str, tmp_path: Path
) -> None:
    keys = ["ka", "kb", "kc", "kd", "ke"]
    tenants = {key: await tenant_at(service, su, key, R2) for key in keys}
    ref2 = await fingerprint(su, tenants["ka"])
    await asyncio.to_thread(
        service.alembic.downgrade_tenant, TEMPLATE_SCHEMA, str(TEMPLATE_TENANT_ID), R3
    )
    locked = tenants["kc"]
    orders = qualified(locked.schema_name, "orders")
    blocker = await asyncpg.connect(database_dsn)
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute(f"LOCK TABLE {orders} IN ACCESS EXCLUSIVE MODE")
    log = tmp_path / "runner.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cli.argv("migrate", "all", "--concurrency", "1", "--lock-timeout", "60"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )

    async def alive() -> None:
        if proc.poll() is not None:
            pytest.fail(f"the runner exited {proc.returncode} early: {log.read_text()[-2000:]}")

    try:
        # The runner (one tenant at a time, in key order) migrated ka and kb and now waits for
        # kc's orders table, inside kc's transaction (customers already altered).
        waiter = await wait_until(
            lambda: su.fetchval(
                "SELECT pid FROM pg_locks WHERE relation = $1::regclass AND NOT granted", orders
            ),
            "the runner to wait for the locked table",
            alive,
        )
        run_id = await su.fetchval("SELECT id FROM public.migration_runs")
        assert await run_status(su, run_id) == "running"

        async def recorded() -> bool:
            progress = {k: r["status"] for k, r in (await run_rows(su, run_id)).items()}
            return progress == {
                "ka": "succeeded",
                "kb": "succeeded",
                "kc": "pending",
                "kd": "pending",
                "ke": "pending",
            }

        # outcome records follow each commit within a moment (batched after the commit)
        await wait_until(recorded, "ka and kb recorded as succeeded while kc waits", alive)
        # A tenant provisioned while the run goes on is built at head (the template was
        # brought to head when the run started).
        late = await service.provision("late")
        assert await schema_step_method(su, late) == "clone"
        assert await revision_of(su, late) == HEAD
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
    assert proc.returncode == -signal.SIGKILL

    # The killed runner's backend is still inside kc's transaction (customers already altered),
    # waiting for the lock. Released, it either finishes that transaction as a whole or rolls
    # it back as a whole; it must not leave kc in between.
    await tx.rollback()
    await blocker.close()
    await wait_until(
        lambda: su.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", waiter
        ),
        "the killed runner's backend to end",
    )
    head_fp = await fingerprint(su, late)
    expected = {R2: ref2, HEAD: head_fp}
    records = {k: r["status"] for k, r in (await run_rows(su, run_id)).items()}
    for key, tenant in tenants.items():
        revision = await revision_of(su, tenant)
        assert revision in KNOWN, (key, revision)
        assert await fingerprint(su, tenant) == expected[revision], key
    revisions = [await revision_of(su, tenants[k]) for k in keys]
    assert revisions[:2] == [HEAD, HEAD] and revisions[3:] == [R2, R2]
    assert revisions[2] in (R2, HEAD)
    # ka and kb were recorded; kc, if its transaction committed after the kill, is not yet
    assert records == {"ka": "succeeded", "kb": "succeeded"} | dict.fromkeys(
        ("kc", "kd", "ke"), "pending"
    )
    kc_landed = revisions[2] == HEAD
    assert not await su.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()))"
    ), "the killed runner's locks are still held"

    left = revisions.count(R2)
    rerun = cli("migrate", "all", "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["total"], summary["succeeded"]) == (left, left)
    for key, tenant in tenants.items():
        assert await fingerprint(su, tenant) == head_fp, key
    assert await run_status(su, run_id) == "interrupted"
    assert await run_status(su, summary["run"]) == "succeeded"
    runs = json.loads(cli("migrate", "runs", "--json").stdout)
    assert [(r["status"], r["succeeded"], r["pending"]) for r in runs] == [
        ("succeeded", left, 0),
        ("interrupted", 5 - left, left),
    ]
    # kc landed by the killed runner was recorded by the rerun (marked recovered); every
    # tenant has exactly one migrate.apply audit row, from the run that moved it
    audit = await apply_rows(su)
    assert sorted(audit) == keys
    killed = {"ka", "kb"} | ({"kc"} if kc_landed else set())
    for key, details in audit.items():
        assert details["run"] == str(run_id if key in killed else summary["run"]), key
        assert details.get("recovered") is (True if key == "kc" and kc_landed else None), key


async def test_records_lost_with_the_process_are_written_by_the_next_run(
    service: ConsoleService, su: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner dies after the tenants committed but before their records were flushed: the
    # schemas are at the target, the run still "running", its tenants "pending", no audit rows.
    tenants = [await tenant_at(service, su, key, R3) for key in ("ra", "rb", "rc")]

    class LostRecords(LandedRecorder):
        async def _flush(self) -> None:
            raise ConnectionResetError("connection reset before the records were written")

    monkeypatch.setattr(migrations, "LandedRecorder", LostRecords)
    plan = await service.migrations.plan()
    rec = Recorder()
    with pytest.raises(ConnectionResetError):
        await service.migrations.run(plan, 2, rec.progress, rec.sink)
    monkeypatch.undo()
    dead = await su.fetchval("SELECT id FROM public.migration_runs")
    assert await run_status(su, dead) == "running"
    assert {k: r["status"] for k, r in (await run_rows(su, dead)).items()} == dict.fromkeys(
        ("ra", "rb", "rc"), "pending"
    )
    assert [await revision_of(su, t) for t in tenants] == [HEAD] * 3
    assert await apply_rows(su) == {}

    # The next run (nothing left to migrate) records them from the schemas, then closes it.
    rec = Recorder()
    state = await migrate(service, recorder=rec)
    assert (state.total, state.done) == (0, 0)
    assert await run_status(su, dead) == "interrupted"
    rows = await run_rows(su, dead)
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(
        ("ra", "rb", "rc"), "succeeded"
    )
    assert all(r["duration_ms"] is None for r in rows.values())  # not measured: recovered
    audit = await apply_rows(su)
    assert sorted(audit) == ["ra", "rb", "rc"]
    for details in audit.values():
        assert details == {
            "run": str(dead),
            "from": R3,
            "to": HEAD,
            "method": "sql",
            "recovered": True,
        }
    assert any(e.step == "reconcile" and "recorded 3 tenant(s)" in e.message for e in rec.events), (
        rec.events
    )
    # A later run finds nothing to reconcile and writes nothing more.
    await migrate(service)
    assert len(await apply_rows(su)) == 3


# -- refusals ------------------------------------------------------------------------------------


async def test_bad_input_read_only_and_a_second_run_are_refused(
    service: ConsoleService, make_service, su: asyncpg.Connection, cli: Cli, database_dsn: str
) -> None:
    tenant = await tenant_at(service, su, "acme", R3)
    cases = {
        ("migrate", "all", "--to", "0009_nope"): "unknown revision '0009_nope'; known: ",
        ("migrate", "plan", "--to", "0009_nope"): "unknown revision '0009_nope'",
        ("migrate", "all", "--tenants", "acme,ghost"): "unknown tenant key(s): ghost",
        ("migrate", "all", "--tenants", "Bad-Key"): "invalid tenant key 'Bad-Key'",
        ("migrate", "all", "--concurrency", "0"): "--concurrency must be between 1 and 32",
        ("migrate", "all", "--lock-timeout", "0"): "--lock-timeout must be between",
        ("migrate", "all", "--concurrency", "12"): "--concurrency 12 needs 13 connections but "
        "the console's pool has 10 (pool_max_size of the cluster): use --concurrency 1-9",
        ("migrate", "retry", "--lock-timeout", "-1"): "--lock-timeout must be between",
        ("migrate", "retry", "not-a-uuid"): "run must be a run id (uuid)",
        ("migrate", "retry", str(uuid.uuid4())): "no such migration run",
        ("--read-only", "migrate", "all"): "read-only mode",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in one_error_line(result), (args, result.stderr)
        assert result.stdout == "", args
    # read-only still reads
    readable = cli("--read-only", "migrate", "status", "--json")
    assert readable.returncode == 0 and json.loads(readable.stdout)["behind"] == 1

    with pytest.raises(InvalidInput, match="unknown revision"):
        await service.migrations.plan("0009_nope")
    plan = await service.migrations.plan()
    with pytest.raises(InvalidInput, match="between 1 and 32"):
        await service.migrations.run(plan, 0, Recorder().progress, Recorder().sink)
    reader = await make_service(read_only=True)
    with pytest.raises(ReadOnlyMode):
        await reader.migrations.run(plan, 2, Recorder().progress, Recorder().sink)
    # another run in progress (its run lock is held): refused, nothing started
    holder = await asyncpg.connect(database_dsn)
    try:
        await holder.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", TENANT_LOCK_CLASS, RUN_LOCK
        )
        with pytest.raises(TenantBusy, match="another migrate run"):
            await service.migrations.run(plan, 2, Recorder().progress, Recorder().sink)
    finally:
        await holder.close()
    assert await revision_of(su, tenant) == R3
    assert await count_runs(su) == 0
