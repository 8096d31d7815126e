"""``backups verify`` on real PostgreSQL: checksum level and restore tests of whole chains into
scratch databases, the named failures (tampered byte, truncated file, wrong key, restored data
that differs, pg_restore errors), what is recorded, and the sample the scheduler verifies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import asyncpg
import pytest
from helpers import make_age_key

from console.config import Settings
from console.core.backups.catalog import BackupKind, BackupRecord
from console.core.backups.scratch import scratch_database
from console.core.backups.verify import VerifyReport
from console.core.errors import NotConfigured, ReadOnlyMode
from console.core.events import Phase, StepEvent
from console.core.service import ConsoleService
from console.core.tenants.registry import Tenant


async def fill(su: asyncpg.Connection, tenant: Tenant, n: int = 20) -> None:
    """Rows in every table: a category tree, products, customers, orders with items."""
    s = tenant.schema_name
    await su.execute(f"INSERT INTO {s}.categories (name) VALUES ('root')")
    await su.execute(
        f"INSERT INTO {s}.categories (name, parent_id) "
        f"SELECT 'c' || i, (SELECT id FROM {s}.categories WHERE name = 'root') "
        "FROM generate_series(1, 4) i"
    )
    await su.execute(
        f"INSERT INTO {s}.products (sku, name, price, category_id) "
        f"SELECT 'sku' || i, 'product ' || i, i * 1.5, "
        f"(SELECT id FROM {s}.categories ORDER BY name LIMIT 1 OFFSET i % 5) "
        f"FROM generate_series(1, {n}) i"
    )
    await su.execute(
        f"INSERT INTO {s}.customers (email, full_name) "
        f"SELECT 'c' || i || '@example.com', 'Customer ' || i FROM generate_series(1, {n}) i"
    )
    await su.execute(
        f"INSERT INTO {s}.orders (customer_id, total) SELECT id, 10 FROM {s}.customers"
    )
    await su.execute(
        f"INSERT INTO {s}.order_items (order_id, product_id, quantity, unit_price) "
        f"SELECT o.id, p.id, 2, p.price FROM {s}.orders o "
        f"JOIN LATERAL (SELECT id, price FROM {s}.products ORDER BY random() LIMIT 2) p ON true"
    )


async def change(su: asyncpg.Connection, tenant: Tenant, round_: int) -> None:
    """Inserts, updates and deletes (a cascade and a SET NULL among them) in every table."""
    s = tenant.schema_name
    await su.execute(
        f"INSERT INTO {s}.customers (email, full_name) "
        f"VALUES ('new{round_}@example.com', 'New {round_}')"
    )
    await su.execute(f"UPDATE {s}.products SET price = price + 1 WHERE sku LIKE 'sku1%'")
    await su.execute(  # order_items go by cascade
        f"DELETE FROM {s}.orders WHERE id IN (SELECT id FROM {s}.orders ORDER BY id LIMIT 2)"
    )
    await su.execute(  # products.category_id set to NULL
        f"DELETE FROM {s}.categories WHERE name = (SELECT min(name) FROM {s}.categories "
        "WHERE parent_id IS NOT NULL)"
    )
    await su.execute(
        f"DELETE FROM {s}.customers c WHERE NOT EXISTS "
        f"(SELECT 1 FROM {s}.orders o WHERE o.customer_id = c.id) AND c.email LIKE 'c%'"
    )
    await su.execute(f"UPDATE {s}.customers SET full_name = full_name || '!' WHERE random() < 0.5")


async def backup(service: ConsoleService, key: str, kind: BackupKind | None = None) -> BackupRecord:
    report = await service.backups.run([key], kind)
    assert not report.failures, report.failures[0].error
    record = report.outcomes[0].record
    assert record is not None
    return record


async def chain_of_three(service: ConsoleService, su: asyncpg.Connection, key: str) -> list:
    """A tenant with data and a full plus two incrementals of changes."""
    tenant = await service.provision(key)
    await fill(su, tenant)
    chain = [await backup(service, key, BackupKind.FULL)]
    for round_ in (1, 2):
        await change(su, tenant, round_)
        chain.append(await backup(service, key))
    assert [r.kind for r in chain] == [BackupKind.FULL, *[BackupKind.INCREMENTAL] * 2]
    return chain


async def verdicts(su: asyncpg.Connection, records: list[BackupRecord]) -> list[tuple]:
    rows = {
        r["id"]: (r["verify_level"], r["verify_result"], r["verified_at"] is not None)
        for r in await su.fetch(
            "SELECT id, verify_level, verify_result, verified_at FROM public.backups"
        )
    }
    return [rows[r.id] for r in records]


async def scratch_databases(su: asyncpg.Connection) -> list[str]:
    rows = await su.fetch(
        "SELECT datname FROM pg_database WHERE datname LIKE 'goconsole\\_verify\\_%'"
    )
    return [r[0] for r in rows]


def only(report: VerifyReport):
    assert len(report.tenants) == 1
    return report.tenants[0]


async def test_a_restore_test_restores_the_whole_chain_and_records_it(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    chain = await chain_of_three(service, su, "acme")
    events: list[StepEvent] = []

    report = await service.backups.verify(["acme"], restore_test=True, sink=events.append)

    outcome = only(report)
    assert outcome.ok, outcome.failure
    assert [link.record.id for link in outcome.links] == [r.id for r in chain]
    assert await verdicts(su, chain) == [("restore", "ok", True)] * 3
    assert outcome.restore is not None and len(outcome.restore.links) == 3
    assert all(t.raw_bytes > 0 for t in outcome.restore.links)
    assert outcome.scratch and outcome.scratch.startswith("goconsole_verify_")
    assert await scratch_databases(su) == []
    assert any(e.step == "restore" and e.phase is Phase.DONE for e in events)
    audited = await su.fetch(
        "SELECT action_type FROM tenant_audit_log WHERE action_type LIKE 'verify.%'"
    )
    assert {r[0] for r in audited} == {"verify.restore", "verify.record"}
    assert report.as_json()["tenants"][0]["restore"]["links"][2]["kind"] == "incremental"


async def test_the_checksum_level_checks_every_link_of_the_newest_chain(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    chain = await chain_of_three(service, su, "acme")
    other = await service.provision("other")
    await fill(su, other, 3)
    await backup(service, "other")

    report = await service.backups.verify(None)

    assert [t.key for t in report.tenants] == ["acme", "other"]
    assert not report.failures
    assert await verdicts(su, chain) == [("checksum", "ok", True)] * 3


@pytest.mark.parametrize("restore_test", [False, True], ids=["checksum", "restore"])
@pytest.mark.parametrize("damage", ["tampered", "truncated"])
async def test_a_damaged_file_is_a_named_failure(
    service: ConsoleService, su: asyncpg.Connection, damage: str, restore_test: bool
) -> None:
    chain = await chain_of_three(service, su, "acme")
    assert chain[0].location is not None
    data = bytearray(chain[0].location.read_bytes())
    if damage == "tampered":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) - 100 :]
    chain[0].location.write_bytes(bytes(data))

    report = await service.backups.verify(["acme"], restore_test=restore_test)

    name = {"tampered": "checksum-mismatch", "truncated": "truncated"}[damage]
    outcome = only(report)
    assert report.failures == [outcome]
    assert outcome.failure is not None and outcome.failure.startswith(f"{name}: ")
    first = (await verdicts(su, chain))[0]
    assert first[0] == ("restore" if restore_test else "checksum")
    assert first[1].startswith(f"{name}: ") and str(chain[0].location) in first[1]
    later = [v[1] for v in await verdicts(su, chain[1:])]
    if restore_test:
        assert all(v.startswith("chain-broken: ") for v in later)
    else:
        assert later == ["ok", "ok"]
    assert await scratch_databases(su) == []


async def test_the_wrong_key_is_a_named_failure(
    make_service, settings: Settings, su: asyncpg.Connection, tmp_path: Path
) -> None:
    service = await make_service()
    await service.init()
    chain = await chain_of_three(service, su, "acme")
    stranger = make_age_key(tmp_path, "stranger.txt")
    wrong = await make_service(
        settings=dataclasses.replace(
            settings,
            backup=dataclasses.replace(settings.backup, identity_file=str(stranger.identity_file)),
        )
    )
    for restore_test in (False, True):
        outcome = only(await wrong.backups.verify(["acme"], restore_test=restore_test))
        assert outcome.failure is not None and outcome.failure.startswith("wrong-key: ")
        assert (await verdicts(su, chain))[0][1].startswith("wrong-key: ")


async def test_restored_data_that_differs_from_the_manifest_fails(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    chain = await chain_of_three(service, su, "acme")
    await su.execute(
        "UPDATE public.backups SET manifest = jsonb_set(manifest, "
        "'{tables,products,changed_digest}', '\"12345\"') WHERE id = $1",
        chain[2].id,
    )
    outcome = only(await service.backups.verify(["acme"], restore_test=True))
    assert [link.result for link in outcome.links][:2] == ["ok", "ok"]
    assert outcome.links[2].result.startswith("digest-mismatch: ")
    assert "products" in outcome.links[2].result

    await su.execute(
        "UPDATE public.backups SET manifest = jsonb_set(manifest, "
        "'{tables,customers,digest}', '\"12345\"') WHERE id = $1",
        chain[0].id,
    )
    outcome = only(await service.backups.verify(["acme"], restore_test=True))
    results = [link.result for link in outcome.links]
    assert results[0].startswith("digest-mismatch: ") and "customers" in results[0]
    assert all(r.startswith("chain-broken: ") for r in results[1:])
    assert await scratch_databases(su) == []


async def test_a_pg_restore_error_fails_the_restore_test(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    tenant = await service.provision("acme")
    await fill(su, tenant, 3)
    # A default calling a function outside the tenant schema: the dump does not hold it, so
    # restoring the schema alone into an empty database fails.
    await su.execute(
        "CREATE FUNCTION public.outside_default() RETURNS text AS $$ SELECT 'x' $$ LANGUAGE sql"
    )
    await su.execute(
        "ALTER TABLE tenant_acme.customers ALTER COLUMN full_name "
        "SET DEFAULT public.outside_default()"
    )
    record = await backup(service, "acme")

    assert only(await service.backups.verify(["acme"])).ok  # the archive itself is intact
    outcome = only(await service.backups.verify(["acme"], restore_test=True))

    assert outcome.failure is not None and outcome.failure.startswith("restore-error: ")
    assert "outside_default" in outcome.failure
    assert (await verdicts(su, [record]))[0][:2] == ("restore", outcome.failure)
    assert await scratch_databases(su) == []


async def test_one_failing_tenant_does_not_stop_the_others(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    for key in ("alpha", "beta"):
        await fill(su, await service.provision(key), 3)
        await backup(service, key)
    record = (await service.backups.history("alpha"))[0]
    assert record.location is not None
    record.location.unlink()

    report = await service.backups.verify(None, restore_test=True, concurrency=2)

    assert [(t.key, t.ok) for t in report.tenants] == [("alpha", False), ("beta", True)]
    assert report.tenants[0].failure.startswith("missing-file: ")  # type: ignore[union-attr]
    assert report.as_json()["failed"] == 1


async def test_verify_is_refused_read_only_and_needs_the_identity_file(
    make_service, settings: Settings, su: asyncpg.Connection
) -> None:
    service = await make_service()
    await service.init()
    await fill(su, await service.provision("acme"), 2)
    record = await backup(service, "acme")
    read_only = await make_service(read_only=True)
    with pytest.raises(ReadOnlyMode, match="backups verify"):
        await read_only.backups.verify(["acme"])
    keyless = await make_service(
        settings=dataclasses.replace(
            settings, backup=dataclasses.replace(settings.backup, identity_file="")
        )
    )
    with pytest.raises(NotConfigured, match=r"backup\.identity_file"):
        await keyless.backups.verify(["acme"])
    assert (await verdicts(su, [record]))[0] == (None, None, False)


async def test_a_scratch_database_that_cannot_be_dropped_is_reported(
    service: ConsoleService, su: asyncpg.Connection
) -> None:
    async with scratch_database(service.db, service.spec) as scratch:
        assert await scratch_databases(su) == [scratch.name]
        # A template database cannot be dropped: the drop at the end fails for real.
        await su.execute(f'ALTER DATABASE "{scratch.name}" IS_TEMPLATE true')
    try:
        assert scratch.drop_error is not None
        assert scratch.drop_error.startswith(f"scratch database {scratch.name} was not dropped: ")
        assert "template" in scratch.drop_error
    finally:
        await su.execute(f'ALTER DATABASE "{scratch.name}" IS_TEMPLATE false')
        await su.execute(f'DROP DATABASE "{scratch.name}"')
