"""Bulk provisioning on real PostgreSQL (and a real PgBouncer): the same tenants, audit rows and
guarantees as single provisioning, per-tenant failures that leave the others alone, and the
CLI's several-keys and --from-file forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import APP_ROLE, PROJECT_ROOT

from console.config import Settings
from console.core.errors import InvalidInput, ReadOnlyMode
from console.core.events import Phase, StepEvent
from console.core.hints import Field
from console.core.locks import TENANT_LOCK_CLASS
from console.core.migrations.tree import head_revision
from console.core.pools.include_file import IncludeFile
from console.core.service import ConsoleService
from console.core.tenants.bulk_report import BulkReport
from console.core.tenants.registry import Tenant, TenantStatus
from console.core.tenants.schema import catalog_fingerprint

STEPS = ["register", "schema", "init_data", "verify", "activate"]


async def statuses(su: asyncpg.Connection) -> dict[str, str]:
    rows = await su.fetch("SELECT key, status::text FROM public.tenants")
    return {r["key"]: r["status"] for r in rows}


async def audit_rows(su: asyncpg.Connection, key: str) -> list[asyncpg.Record]:
    return await su.fetch(
        "SELECT a.action_type, a.actor, a.actor_host, a.actor_address, a.details "
        "FROM public.tenant_audit_log a JOIN public.tenants t ON t.id = a.tenant_id "
        "WHERE t.key = $1 ORDER BY a.action_timestamp, a.id",
        key,
    )


async def fingerprint(service: ConsoleService, tenant: Tenant) -> dict[str, list[Any]]:
    async with service.db.acquire() as conn:
        return await catalog_fingerprint(conn, tenant.schema_name, tenant.id)


async def tenant(service: ConsoleService, key: str) -> Tenant:
    async with service.db.acquire() as conn:
        return await service.registry.require(conn, key)


async def advisory_locks(su: asyncpg.Connection) -> int:
    return int(
        await su.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND pid <> pg_backend_pid()"
        )
    )


# -- the bulk path builds what the single path builds -------------------------------------------


async def test_bulk_builds_every_tenant_like_a_single_provision(
    service: ConsoleService, su: asyncpg.Connection, app_conn
) -> None:
    reference = await service.provision("reference")
    keys = [f"bulk_{i:02d}" for i in range(30)]
    events: list[StepEvent] = []
    seen: list[tuple[int, int, int]] = []

    def progress(report: BulkReport) -> None:
        seen.append((report.done, report.failed, report.remaining))

    report = await service.provisioning.provision_many(
        keys, events.append, concurrency=3, progress=progress, batch_size=8
    )

    assert (report.done, report.failed, report.skipped, report.remaining) == (30, 0, 0, 0)
    assert seen[0] == (0, 0, 30) and seen[-1] == (30, 0, 0)
    assert [o.result for o in report.outcomes.values()] == ["active"] * 30
    assert json.loads(json.dumps(report.as_json()))["succeeded"] == 30
    assert set((await statuses(su)).values()) == {"ACTIVE"}
    assert await advisory_locks(su) == 0

    expected = await fingerprint(service, reference)
    reference_audit = {r["action_type"]: r["details"] for r in await audit_rows(su, "reference")}
    for key in keys:
        built = await tenant(service, key)
        assert built.status is TenantStatus.ACTIVE
        assert await fingerprint(service, built) == expected, key
        rows = await audit_rows(su, key)
        assert [r["action_type"] for r in rows] == [f"provision.{s}" for s in STEPS], key
        actor = service.actor
        assert {(r["actor"], r["actor_host"], r["actor_address"]) for r in rows} == {
            (actor.user, actor.host, actor.address)
        }
        for row in rows:
            details = row["details"]
            assert set(details) == set(reference_audit[row["action_type"]]), row["action_type"]
            assert details["duration_ms"] >= 0
        assert rows[1]["details"]["method"] == "clone"
        assert rows[1]["details"]["revision"] == head_revision("tenant")
        assert rows[2]["details"]["tables_granted"] == 6
        assert rows[3]["details"]["role"] == APP_ROLE
        assert [e.step for e in events if e.tenant == key and e.phase is Phase.DONE] == STEPS

    # what the tenant starts with, as the application role sees it; the check's rows are gone
    one = await tenant(service, "bulk_07")
    conn = await app_conn()
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", str(one.id))
        assert await conn.fetchval("SELECT name FROM tenant_bulk_07.categories") == (
            "Uncategorized"
        )
    assert await su.fetchval("SELECT count(*) FROM tenant_bulk_07.customers") == 0


# -- refusals before any SQL -------------------------------------------------------------------


async def test_bad_request_is_refused_whole_before_any_sql(
    settings: Settings, database_dsn: str, make_service, su: asyncpg.Connection
) -> None:
    # never opened: any SQL would fail with "Database.open() was not awaited", not these
    closed = ConsoleService(settings, dsn=database_dsn)
    cases = [
        (["good", "Bad;"], "invalid tenant key 'Bad;': a tenant key is 1-56 characters"),
        (["good", "public"], "tenant key 'public' is reserved"),
        (["a1", "b1", "a1"], "tenant key(s) given more than once: a1; each key may appear once"),
        ([], "no tenant key given"),
    ]
    for keys, message in cases:
        with pytest.raises(InvalidInput) as err:
            await closed.provision_many(keys)
        assert message in err.value.message
    with pytest.raises(
        InvalidInput, match=r"^concurrency 10 is out of range 1-9: .* has 10"
    ) as err:
        await closed.provision_many(["good"], concurrency=10)
    assert err.value.field is Field.CONCURRENCY
    with pytest.raises(InvalidInput, match="out of range 1-9"):
        await closed.provision_many(["good"], concurrency=0)

    service = await make_service()
    await service.init()
    audit_before = await su.fetchval("SELECT count(*) FROM public.tenant_audit_log")
    read_only = await make_service(read_only=True)
    with pytest.raises(ReadOnlyMode, match="provision refused: the console is in read-only mode"):
        await read_only.provision_many(["good", "better"])
    with pytest.raises(InvalidInput, match="given more than once"):
        await service.provision_many(["good", "good"])
    assert await statuses(su) == {}
    assert await su.fetchval("SELECT count(*) FROM public.tenant_audit_log") == audit_before
    assert not await su.fetchval("SELECT to_regnamespace('tenant_good') IS NOT NULL")


# -- per-tenant failures leave the others alone -------------------------------------------------


async def test_a_key_in_use_fails_only_that_tenant(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    await service.provision("taken")
    await service.provision("gone")
    await service.offboard("gone", timeout=1)
    taken_audit = len(await audit_rows(su, "taken"))

    report = await service.provision_many(["first", "taken", "gone", "last"])

    assert (report.done, report.failed) == (2, 2)
    for key, status in (("taken", "ACTIVE"), ("gone", "ARCHIVED")):
        outcome = report.outcomes[key]
        assert (outcome.result, outcome.step) == ("failed", "register")
        assert outcome.error == (
            f"tenant key {key!r} is already in use (status {status}); choose another key"
        )
    assert await statuses(su) == {
        "first": "ACTIVE",
        "taken": "ACTIVE",
        "gone": "ARCHIVED",
        "last": "ACTIVE",
    }
    assert len(await audit_rows(su, "taken")) == taken_audit  # refused, as single provision does
    assert [o.key for o in report.unsuccessful()] == ["taken", "gone"]


async def test_a_busy_tenant_is_reported_with_its_holder_and_the_rest_succeed(
    service: ConsoleService, su: asyncpg.Connection, database_dsn: str
) -> None:
    holder = await asyncpg.connect(database_dsn, server_settings={"application_name": "runbook"})
    try:
        await holder.execute("SELECT pg_advisory_lock($1, hashtext('locked'))", TENANT_LOCK_CLASS)
        events: list[StepEvent] = []
        report = await service.provision_many(["alpha", "locked", "omega"], events.append)
        outcome = report.outcomes["locked"]
        assert (outcome.result, outcome.step) == ("busy", "lock")
        assert outcome.error is not None
        assert outcome.error.startswith(
            f"tenant 'locked' is busy: runbook (pid {holder.get_server_pid()}"
        )
        assert " since " in outcome.error
        assert (report.done, report.failed, report.skipped) == (2, 0, 1)
        assert [e.step for e in events if e.tenant == "locked"] == ["lock"]
        assert await statuses(su) == {"alpha": "ACTIVE", "omega": "ACTIVE"}
    finally:
        await holder.close()
    again = await service.provision_many(["locked"])
    assert again.done == 1
    assert (await statuses(su))["locked"] == "ACTIVE"


async def test_tenants_left_by_an_earlier_run_are_finished_by_the_single_path(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    # what crashes and failures leave: a bare INITIALIZING row, a FAILED row with a half-built
    # schema, and a schema whose registration never happened
    await su.execute("""
        INSERT INTO public.tenants (key, schema_name, display_name, status) VALUES
            ('crashed', 'tenant_crashed', 'Crashed', 'INITIALIZING'),
            ('broken', 'tenant_broken', 'Broken', 'FAILED');
        CREATE SCHEMA tenant_broken;
        CREATE TABLE tenant_broken.half_built (id int);
        CREATE SCHEMA tenant_orphan;
    """)
    events: list[StepEvent] = []
    report = await service.provision_many(["fresh", "crashed", "broken", "orphan"], events.append)

    assert report.done == 4, report.as_json()
    assert {k: o.resumed for k, o in report.outcomes.items()} == {
        "fresh": False,
        "crashed": True,
        "broken": True,
        "orphan": True,
    }
    assert set((await statuses(su)).values()) == {"ACTIVE"}
    expected = await fingerprint(service, await tenant(service, "fresh"))
    for key in ("crashed", "broken", "orphan"):
        assert await fingerprint(service, await tenant(service, key)) == expected, key
    register = {
        key: (await audit_rows(su, key))[0]["details"] for key in ("crashed", "broken", "orphan")
    }
    assert register["crashed"]["resumed_from"] == "INITIALIZING"
    assert register["broken"]["resumed_from"] == "FAILED"
    assert "resumed_from" not in register["orphan"]
    assert any(
        e.tenant == "broken" and "dropping leftover schema tenant_broken" in e.message
        for e in events
    )


BREACHES = {
    "rows-leak": (
        "CREATE POLICY leak ON tenant_victim.customers USING (true)",
        "row-level security leaks: another tenant id sees 1 rows",
    ),
    "foreign-write": (
        "CREATE POLICY leak ON tenant_victim.customers FOR INSERT WITH CHECK (true)",
        "row-level security lets another tenant id write rows",
    ),
    "no-usage": (
        f"REVOKE USAGE ON SCHEMA tenant_victim FROM {APP_ROLE}",
        "permission denied for schema tenant_victim (SQLSTATE 42501)",
    ),
}


@pytest.mark.parametrize("breach", list(BREACHES))
async def test_a_verification_breach_fails_only_that_tenant_and_a_rerun_finishes_it(
    service: ConsoleService, su: asyncpg.Connection, breach: str
) -> None:
    sabotage, message = BREACHES[breach]
    # Between its grants and its verification, one tenant's schema is broken, inside the
    # tenant's own transaction: an event trigger fires after its first GRANT (only that
    # transaction can see the uncommitted schema tenant_victim; once per transaction).
    await su.execute(f"""
        CREATE FUNCTION public.sabotage() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF to_regnamespace('tenant_victim') IS NOT NULL
                    AND current_setting('goconsole_test.sabotaged', true)
                        IS DISTINCT FROM 'yes' THEN
                PERFORM set_config('goconsole_test.sabotaged', 'yes', true);
                EXECUTE '{sabotage}';
            END IF;
        END $$;
        CREATE EVENT TRIGGER sabotage ON ddl_command_end WHEN TAG IN ('GRANT')
            EXECUTE FUNCTION public.sabotage();
    """)
    report = await service.provision_many(["healthy", "victim", "sturdy"])

    victim = report.outcomes["victim"]
    assert (victim.result, victim.step, victim.error) == ("failed", "verify", message)
    assert (report.done, report.failed) == (2, 1)
    assert await statuses(su) == {"healthy": "ACTIVE", "victim": "FAILED", "sturdy": "ACTIVE"}
    # the tenant's build was one transaction: nothing of it is left but its registration
    assert not await su.fetchval("SELECT to_regnamespace('tenant_victim') IS NOT NULL")
    rows = await audit_rows(su, "victim")
    assert [r["action_type"] for r in rows] == ["provision.register", "provision.failed"]
    assert rows[1]["details"] == {"step": "verify", "error": message}

    await su.execute("DROP EVENT TRIGGER sabotage")
    again = await service.provision_many(["victim"])
    assert again.done == 1 and again.outcomes["victim"].resumed
    assert (await statuses(su))["victim"] == "ACTIVE"
    assert await fingerprint(service, await tenant(service, "victim")) == await fingerprint(
        service, await tenant(service, "healthy")
    )


async def test_the_alembic_path_builds_the_same_tenants(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    report = await service.provision_many(["via_clone"])
    await su.execute("DROP SCHEMA goconsole_tenant_template CASCADE")  # falls back, as single does
    events: list[StepEvent] = []
    fallback = await service.provision_many(["missing_a", "missing_b"], events.append)
    forced = await service.provision_many(["forced"], use_template=False)

    assert (report.done, fallback.done, forced.done) == (1, 2, 1)
    assert any(
        e.tenant is None and e.message.startswith("falling back to alembic: template schema")
        for e in events
    )
    expected = await fingerprint(service, await tenant(service, "via_clone"))
    for key, reason in (
        ("missing_a", "template schema goconsole_tenant_template is missing"),
        ("forced", "alembic path requested"),
    ):
        assert await fingerprint(service, await tenant(service, key)) == expected, key
        schema = {r["action_type"]: r["details"] for r in await audit_rows(su, key)}[
            "provision.schema"
        ]
        assert schema["method"] == "alembic" and schema["reason"].startswith(reason)


# -- PgBouncer: one include-file edit and one RELOAD per batch --------------------------------


async def test_pgbouncer_aliases_are_added_in_one_edit_with_a_pool_row_each(
    bouncer_service: ConsoleService, su: asyncpg.Connection
) -> None:
    include = IncludeFile(Path(bouncer_service.settings.pgbouncer.include_file))
    before = include.read()
    keys = ["pool_a", "pool_b", "pool_c"]
    report = await bouncer_service.provision_many(keys)

    assert report.done == 3
    assert set(include.read()) - set(before) == {f"tenant_{k}" for k in keys}
    # one edit: the version kept from before the change holds none of the new aliases
    assert not any(f"tenant_{k}" in include.previous.read_text() for k in keys)
    for key in keys:  # reloaded: PgBouncer serves the new aliases, open
        assert await bouncer_service.pools.alias_state(f"tenant_{key}") == (False, False)
    for key in keys:
        rows = await audit_rows(su, key)
        assert [r["action_type"] for r in rows] == [
            "provision.register",
            "provision.schema",
            "provision.init_data",
            "provision.verify",
            "provision.pool",
            "provision.activate",
        ]
        pool = rows[4]["details"]
        assert pool["alias"] == f"tenant_{key}" and pool["reload"] == "done"
        assert (pool["pool_size"], pool["reserve_pool"]) == (20, 5)


# -- the command line ----------------------------------------------------------------------------


def cli(
    tmp_path: Path, dsn: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m console --dsn DSN ARGS`` with backups in ``tmp_path``."""
    config = tmp_path / "cli-config.toml"
    config.write_text(f'[backup]\ndir = "{tmp_path / "backups"}"\n')
    return subprocess.run(
        [sys.executable, "-m", "console", "--config", str(config), "--dsn", dsn, *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=dict(os.environ),
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("goconsole: error: "), result.stderr
    return lines[-1]


async def test_cli_provisions_several_keys_from_arguments_a_file_and_stdin(
    tmp_path: Path, database_dsn: str, su: asyncpg.Connection
) -> None:
    assert cli(tmp_path, database_dsn, "init").returncode == 0
    one = cli(tmp_path, database_dsn, "tenants", "provision", "solo", "--name", "Solo Ltd")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("tenant solo is ACTIVE (schema tenant_solo, id ")
    assert "✓ verify" in one.stderr  # one key: every step, as before

    several = cli(tmp_path, database_dsn, "tenants", "provision", "c1", "c2", "c3", "--json")
    assert several.returncode == 0, several.stderr
    summary = json.loads(several.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (3, 3, 0)
    assert [t["key"] for t in summary["tenants"]] == ["c1", "c2", "c3"]
    assert "✓ verify" not in several.stderr  # several keys: a progress line, not every step
    assert "3/3 done 3 failed 0" in several.stderr

    listing = tmp_path / "keys.txt"
    listing.write_text("# new shops\nf1\n\n  f2   # the second\nf3\n")
    from_file = cli(
        tmp_path, database_dsn, "tenants", "provision", "--from-file", str(listing),
        "--concurrency", "2",
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    assert "3 tenant(s): 3 ACTIVE, 0 failed, 0 busy" in from_file.stdout

    piped = cli(
        tmp_path, database_dsn, "tenants", "provision", "--from-file", "-", stdin="s1\ns2\n"
    )
    assert piped.returncode == 0, piped.stderr

    mixed = cli(tmp_path, database_dsn, "tenants", "provision", "c1", "m1")
    assert mixed.returncode == 1
    assert "2 tenant(s): 1 ACTIVE, 1 failed, 0 busy" in mixed.stdout
    assert "c1   failed  register  tenant key 'c1' is already in use" in mixed.stdout
    assert "1 of 2 tenant(s) not provisioned" in error_line(mixed)

    keys = ["solo", "c1", "c2", "c3", "f1", "f2", "f3", "s1", "s2", "m1"]
    assert await statuses(su) == dict.fromkeys(keys, "ACTIVE")
    assert await su.fetchval("SELECT display_name FROM public.tenants WHERE key = 'solo'") == (
        "Solo Ltd"
    )


async def test_cli_bad_input_exits_2_and_changes_nothing(
    tmp_path: Path, database_dsn: str, su: asyncpg.Connection
) -> None:
    assert cli(tmp_path, database_dsn, "init").returncode == 0
    listing = tmp_path / "keys.txt"
    listing.write_text("good\nBad Key\n")
    cases = [
        (("--from-file", str(listing)), f"{listing}:2: invalid tenant key 'Bad Key'"),
        (("--from-file", str(tmp_path / "nope.txt")), "cannot read"),
        (("x1", "x2", "x1"), "tenant key(s) given more than once: x1"),
        (("x1", "x2", "--name", "X"), "--name names one tenant"),
        (("x1", "x2", "--concurrency", "10"), "--concurrency 10 is out of range 1-9"),
        (("x1", "x2", "--concurrency", "0"), "--concurrency 0 is out of range 1-9"),
        ((), "no tenant key given"),
    ]
    for args, message in cases:
        result = cli(tmp_path, database_dsn, "tenants", "provision", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in error_line(result), args
    read_only = cli(tmp_path, database_dsn, "--read-only", "tenants", "provision", "x1", "x2")
    assert read_only.returncode == 2
    assert "read-only mode" in error_line(read_only)
    assert await statuses(su) == {}
