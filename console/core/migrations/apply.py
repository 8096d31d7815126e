"""One tenant's migration: its whole script (lock timeout, advisory lock, revision check, the
rendered SQL) as one message that PostgreSQL runs as one implicit transaction, or alembic in a
worker process for revisions that cannot be rendered offline; and its outcome record.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import asyncpg

from console.core import locks
from console.core.audit import AuditLog
from console.core.db import ConnectionSpec, Database
from console.core.errors import InvalidInput, OperationFailed
from console.core.identifiers import qualified
from console.core.locks import LOCK_TIMEOUT_SQLSTATE, blocked_by, schema_lock_holders
from console.core.migrations.plan import PlanGroup
from console.core.migrations.tree import VERSION_TABLE, AlembicRunner
from console.core.operations import describe_error
from console.core.tenants.registry import Tenant

# Raised inside a tenant's migration when its advisory lock is held by another operation.
BUSY_SQLSTATE = "GCBSY"


def _upgrade_in_process(
    conninfo: str, password: str | None, schema: str, tenant_id: str, target: str
) -> None:
    """Process-pool entry point: one alembic upgrade in a fresh process."""
    AlembicRunner(ConnectionSpec(conninfo, password)).upgrade_tenant(schema, tenant_id, target)


class TenantMigrator:
    """Migrates one tenant at a time on a worker's connection and records failures."""

    def __init__(
        self, db: Database, audit: AuditLog, alembic: AlembicRunner, lock_timeout_s: float
    ) -> None:
        self._db = db
        self._audit = audit
        self._alembic = alembic
        self.lock_timeout_s = lock_timeout_s

    async def migrate_one(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        pool: ProcessPoolExecutor | None,
    ) -> str:
        """``succeeded``, ``busy``, or the error text."""
        started = time.perf_counter()
        try:
            if group.sql is None:
                return await self._migrate_with_alembic(conn, run_id, tenant, group, pool, started)
            await conn.execute(tenant_script(tenant, group, self.lock_timeout_s))
            return "succeeded"
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == BUSY_SQLSTATE:
                return "busy"
            error = describe_error(exc)
            if exc.sqlstate == LOCK_TIMEOUT_SQLSTATE and usable(conn):
                error = f"{error} — {await self._blockers(conn, tenant)}"
        except OperationFailed as exc:
            error = describe_error(exc)
        except (asyncpg.InterfaceError, OSError) as exc:
            # The rollback on a dead connection raises anew; name the server's reason if any.
            cause = exc.__context__ if isinstance(exc.__context__, asyncpg.PostgresError) else exc
            error = describe_error(cause)
        if not usable(conn):
            return f"connection lost: {error}"  # the worker records it on a fresh connection
        await self.record(conn, run_id, tenant, "failed", error, elapsed(started))
        return error

    @staticmethod
    async def _blockers(conn: asyncpg.Connection, tenant: Tenant) -> str:
        """Who held the tenant's tables when its migration gave up on its lock timeout, looked
        up at once on the worker's connection (the holders usually still hold them)."""
        try:
            return blocked_by(await schema_lock_holders(conn, tenant.schema_name))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            return f"the lock holders could not be looked up: {describe_error(exc)}"

    async def _migrate_with_alembic(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        pool: ProcessPoolExecutor | None,
        started: float,
    ) -> str:
        assert pool is not None
        if not await locks.try_lock(conn, tenant.key):
            return "busy"
        try:
            spec = self._alembic.spec
            await asyncio.get_running_loop().run_in_executor(
                pool,
                _upgrade_in_process,
                spec.conninfo,
                spec.password,
                tenant.schema_name,
                str(tenant.id),
                group.to_rev,
            )
            async with conn.transaction():
                await self._finish(conn, run_id, tenant, group, started)
        except Exception as exc:  # alembic raises many types across the process boundary
            raise OperationFailed(describe_error(exc)) from exc
        finally:
            await locks.unlock(conn, tenant.key)
        return "succeeded"

    async def _finish(
        self,
        conn: asyncpg.Connection,
        run_id: uuid.UUID,
        tenant: Tenant,
        group: PlanGroup,
        started: float,
    ) -> None:
        """Check the version row, record success and audit — inside the tenant's transaction."""
        revision = await conn.fetchval(
            f"SELECT version_num FROM {qualified(tenant.schema_name, VERSION_TABLE)}"
        )
        if revision != group.to_rev:
            raise OperationFailed(
                f"version row says {revision} after migrating, not {group.to_rev}"
            )
        duration = elapsed(started)
        await conn.execute(
            "UPDATE public.migration_run_tenants SET status = 'succeeded', error = NULL, "
            "duration_ms = $3 WHERE run_id = $1 AND tenant_id = $2",
            run_id,
            tenant.id,
            duration,
        )
        await self._audit.write(
            conn,
            tenant.id,
            "migrate.apply",
            {
                "run": str(run_id),
                "from": group.from_rev,
                "to": group.to_rev,
                "method": group.method,
                "duration_ms": round(duration, 1),
            },
        )

    async def record(
        self,
        conn: asyncpg.Connection | None,
        run_id: uuid.UUID,
        tenant: Tenant,
        status: str,
        error: str,
        duration: float | None,
    ) -> None:
        """Record a tenant's outcome on ``conn`` (outside any transaction), or on a pooled
        connection when ``conn`` is None."""
        if conn is None:
            async with self._db.acquire() as pooled:
                await self.record(pooled, run_id, tenant, status, error, duration)
            return
        await conn.execute(
            "UPDATE public.migration_run_tenants SET status = $3, error = $4, "
            "duration_ms = $5 WHERE run_id = $1 AND tenant_id = $2",
            run_id,
            tenant.id,
            status,
            error[:2000],
            duration,
        )


def tenant_script(tenant: Tenant, group: PlanGroup, lock_timeout_s: float) -> str:
    """One tenant's whole migration as one message, which PostgreSQL runs as one implicit
    transaction (all or nothing): the lock timeout, the tenant's advisory lock (or the BUSY
    error), a check that the tenant is still at the planned revision (alembic's SQL then
    moves the version row step by step to the target), and the SQL. Its outcome record and
    audit row follow after the commit, batched with other tenants' (LandedRecorder).

    One round trip per tenant instead of nine: on a small machine the client and the server
    share the cores, and the round trips, not the DDL, were most of the cost. Values are
    inlined as literals (simple query protocol).
    """
    sql = group.template.render(tenant.schema_name, tenant.id)
    key, from_rev = _literal(tenant.key), _literal(group.from_rev)
    timeout_ms = max(1, round(lock_timeout_s * 1000))
    return f"""DO $goconsole$DECLARE found text;
BEGIN
    PERFORM set_config('lock_timeout', '{timeout_ms}', true);
    IF NOT {locks.advisory_sql("pg_try_advisory_xact_lock", key)} THEN
        RAISE EXCEPTION 'tenant % is busy', {key} USING ERRCODE = '{BUSY_SQLSTATE}';
    END IF;
    SELECT version_num INTO found FROM {qualified(tenant.schema_name, VERSION_TABLE)};
    IF found IS DISTINCT FROM {from_rev} THEN
        RAISE EXCEPTION 'tenant is at %, not at % as planned (plan again)', found, {from_rev};
    END IF;
END$goconsole$;
{sql}"""


def _literal(value: str) -> str:
    """A SQL string literal, quoted as PostgreSQL's quote_literal does."""
    if "\x00" in value:
        raise InvalidInput("a SQL literal cannot contain NUL")
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def usable(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is still open (a lost one is detached from its proxy)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def elapsed(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()``)."""
    return (time.perf_counter() - started) * 1000
