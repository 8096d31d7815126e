"""Provisioning one tenant, step by step through :class:`OperationRunner` (register, schema,
init_data, verify, pool, activate), resuming one an earlier run left INITIALIZING or FAILED;
many tenants go through :mod:`console.core.tenants.bulk` with the same guarantees. A half-built
tenant is never ACTIVE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from console.config import LifecycleSettings
from console.core.db import Database
from console.core.errors import InvalidInput
from console.core.events import EventSink, discard
from console.core.identifiers import schema_for, validate_tenant_key
from console.core.migrations.tree import AlembicRunner, head_revision
from console.core.operations import Operation, OperationRunner
from console.core.pools.service import POOL_STEPS_SKIPPED, PoolService
from console.core.states import RESUMABLE, Action, leaves
from console.core.tenants.bulk import BATCH_SIZE, BulkProvisioner
from console.core.tenants.bulk_report import BulkProgress, BulkReport
from console.core.tenants.registry import Registry, Tenant, display_name_for
from console.core.tenants.schema import (
    drop_schema,
    grant_access,
    schema_revision,
    seed_initial_data,
    verify_access,
)
from console.core.tenants.template import TemplateDDL, TemplateSchema


def note_unmanaged_pool(op: Operation, pools: PoolService | None) -> None:
    """Say once, in the operation's progress, that its PgBouncer steps do not run."""
    if pools is None:
        op.info(POOL_STEPS_SKIPPED)


class Provisioner:
    """Provisions tenants on one cluster, one (:meth:`provision`) or many at a time."""

    def __init__(
        self,
        db: Database,
        runner: OperationRunner,
        registry: Registry,
        template: TemplateSchema,
        alembic: AlembicRunner,
        app_role: str,
        cluster: str,
        pools: PoolService | None = None,
    ) -> None:
        self._db = db
        self._runner = runner
        self._registry = registry
        self._template = template
        self._alembic = alembic
        self._app_role = app_role
        self._cluster = cluster
        self._pools = pools
        self._bulk = BulkProvisioner(
            db, runner, template, alembic, app_role, cluster, pools, self.provision
        )

    async def provision(
        self,
        key: str,
        display_name: str | None = None,
        sink: EventSink = discard,
        use_template: bool = True,
    ) -> Tenant:
        """Create (or finish creating) tenant ``key``; returns the ACTIVE tenant."""
        validate_tenant_key(key)  # before the display name, which defaults to the key
        name = display_name_for(key, display_name)
        async with self._runner.run("provision", key, sink) as op:
            async with self._db.acquire() as conn:
                check_key_free(key, await self._registry.get(conn, key))
            try:
                return await self._provision_steps(op, key, schema_for(key), name, use_template)
            except Exception:
                if op.tenant_id is not None:
                    async with self._db.acquire() as conn:
                        await conn.execute(
                            "UPDATE public.tenants SET status = 'FAILED' "
                            "WHERE id = $1 AND status = 'INITIALIZING'",
                            op.tenant_id,
                        )
                raise

    async def check_new_key(self, key: str) -> Tenant | None:
        """What :meth:`provision` checks before it starts, without starting: InvalidInput for a
        bad key or one already in use; the tenant an interrupted provision left (which
        provisioning finishes), else None."""
        validate_tenant_key(key)
        async with self._db.acquire() as conn:
            existing = await self._registry.get(conn, key)
        check_key_free(key, existing)
        return existing

    async def provision_many(
        self,
        keys: Sequence[str],
        sink: EventSink = discard,
        use_template: bool = True,
        concurrency: int = LifecycleSettings.provision_concurrency,
        names: Mapping[str, str] | None = None,
        progress: BulkProgress | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> BulkReport:
        """Provision many tenants in batches with the guarantees of :meth:`provision` and a
        fraction of its round trips (see :mod:`console.core.tenants.bulk`); keys an earlier
        run left INITIALIZING or FAILED are finished by :meth:`provision`. ``names`` maps keys
        to display names (default: the key); ``progress`` gets the report after each tenant."""
        return await self._bulk.run(
            keys, sink, use_template, concurrency, names, progress, batch_size
        )

    async def _provision_steps(
        self, op: Operation, key: str, schema: str, name: str, use_template: bool
    ) -> Tenant:
        async with op.step("register", "registering the tenant as INITIALIZING") as step:
            async with self._db.acquire() as conn:
                tenant = await self._registry.insert(conn, key, schema, name, self._cluster)
                if tenant is None:
                    existing = await self._registry.require(conn, key)
                    if existing.status not in RESUMABLE:
                        raise InvalidInput(f"tenant key {key!r} is already in use")
                    tenant = await self._registry.transition(
                        conn, existing, leaves(Action.PROVISION, "register"), RESUMABLE
                    )
                    step.details["resumed_from"] = existing.status.value
                    op.info(f"resuming a provision left in {existing.status}")
            op.tenant_id = tenant.id
            step.details.update(schema=schema, display_name=name)

        async with op.step("schema", f"building schema {schema}") as step:
            built, tables = await self._build_schema(op, tenant, use_template)
            step.details.update(built)

        async with op.step("init_data", "granting access and seeding initial data") as step:
            async with self._db.acquire() as conn, conn.transaction():
                step.details["tables_granted"] = await grant_access(
                    conn, schema, self._app_role, tables
                )
                await seed_initial_data(conn, schema, tenant.id)

        async with op.step("verify", f"verifying access as {self._app_role}") as step:
            async with self._db.acquire() as conn:
                step.details.update(await verify_access(conn, schema, tenant.id, self._app_role))

        if self._pools is not None:
            await self._pools.add_alias(op, tenant)
        note_unmanaged_pool(op, self._pools)

        async with op.step("activate", "marking the tenant ACTIVE"), self._db.acquire() as conn:
            return await self._registry.transition(
                conn,
                tenant,
                leaves(Action.PROVISION, "activate"),
                {leaves(Action.PROVISION, "register")},
            )

    async def _build_schema(
        self, op: Operation, tenant: Tenant, use_template: bool
    ) -> tuple[dict[str, Any], list[str] | None]:
        """Build the schema; returns audit details and, for a clone, its table names."""
        head = head_revision("tenant")
        schema = tenant.schema_name
        async with self._db.acquire() as conn:
            exists, revision = await schema_revision(conn, schema)
            if exists and revision == head:
                op.info(f"schema {schema} is already at {head} (built by an earlier run)")
                return {"method": "existing", "revision": head}, None
            if exists:
                op.info(f"dropping leftover schema {schema} (revision {revision})")
                await drop_schema(conn, schema)
            ddl: TemplateDDL | str = (
                await self._template.ddl(conn) if use_template else "alembic path requested"
            )
            if isinstance(ddl, TemplateDDL):
                await self._template.clone(conn, ddl, schema, tenant.id)
                return {"method": "clone", "revision": ddl.revision}, ddl.tables
        if use_template:
            op.info(f"falling back to alembic: {ddl}")
        await asyncio.to_thread(self._alembic.upgrade_tenant, schema, str(tenant.id))
        return {"method": "alembic", "revision": head, "reason": ddl}, None


def check_key_free(key: str, existing: Tenant | None) -> None:
    """InvalidInput when ``key`` belongs to a tenant that provisioning cannot finish (only an
    INITIALIZING or FAILED one is finished)."""
    if existing is not None and existing.status not in RESUMABLE:
        raise InvalidInput(
            f"tenant key {key!r} is already in use (status {existing.status}); choose another key"
        )
