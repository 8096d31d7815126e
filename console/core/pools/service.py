"""Per-tenant PgBouncer pools: live actions on aliases in the managed include file, and the
hooks the tenant lifecycle calls (configuration, reads and shared helpers: ``reads.py``). Every
action runs through :class:`OperationRunner` (lock, audit with the actor, events)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from console.core.errors import (
    InvalidInput,
    NotFound,
    OperationFailed,
    PgBouncerUnavailable,
    TenantBusy,
)
from console.core.events import EventSink, Phase, StepEvent, discard
from console.core.hints import Field
from console.core.identifiers import validate_tenant_key
from console.core.operations import Operation
from console.core.pools.aliases import check_pool_size, size_limit
from console.core.pools.include_file import Alias
from console.core.pools.reads import PoolReads
from console.core.pools.rows import parse_config, parse_databases
from console.core.pools.sync import SyncReport, explicitly_sized, reconcile
from console.core.states import Action, allowed
from console.core.tenants.registry import Tenant, TenantStatus

POOL_STEPS_SKIPPED = "pgbouncer: not configured — pool steps skipped"
SIMPLE_ACTIONS = {
    "resume": ("RESUME", "resuming"),
    "disable": ("DISABLE", "refusing new clients on"),
    "enable": ("ENABLE", "accepting clients again on"),
    "reconnect": ("RECONNECT", "recycling server connections of"),
}


class PoolService(PoolReads):
    """PgBouncer actions for one cluster (reads and shared helpers: :class:`PoolReads`)."""

    # -- actions ----------------------------------------------------------------------------

    async def set_size(
        self, key: str, size: object, reserve: object | None = None, sink: EventSink = discard
    ) -> Alias:
        """Rewrite the tenant's alias with a new pool size (and reserve) and RELOAD."""
        validate_tenant_key(key)
        spare = self.settings.default_reserve_pool if reserve is None else reserve
        check_pool_size(size, spare, self.settings.max_pool_size)
        self._require_include()
        async with self._runner.run("pool", key, sink) as op:
            tenant = await op.tenant(Action.POOL)
            pool, spare_n = check_pool_size(size, spare, await self.size_limit())
            async with op.step("set_size", f"pool size {pool}, reserve {spare_n}") as step:
                with self.include.editing() as aliases:
                    before = aliases.get(tenant.schema_name)
                    alias = self._alias(tenant.schema_name, pool, spare_n)
                    aliases[alias.name] = alias
                try:
                    await self.admin.command("RELOAD")
                except PgBouncerUnavailable:
                    with self.include.editing() as aliases:  # nothing half-done: put it back
                        if before is None:
                            aliases.pop(alias.name, None)
                        else:
                            aliases[alias.name] = before
                    raise
                self.monitor.invalidate_config()
                step.details.update(
                    alias=alias.name,
                    before=None if before is None else [before.pool_size, before.reserve_pool],
                    after=[pool, spare_n],
                )
            return alias

    async def set_default(self, size: object, sink: EventSink = discard) -> int:
        """``SET default_pool_size`` (live, for every alias without its own pool_size)."""
        pool, _ = check_pool_size(size, 0, self.settings.max_pool_size)
        async with self._runner.run("pool", None, sink) as op:
            limits = parse_config(await self.admin.show("CONFIG"))
            pool, _ = check_pool_size(size, 0, size_limit(self.settings, limits))
            async with op.step("set_default", f"default_pool_size = {pool}") as step:
                before = limits.default_pool_size
                await self.admin.command(f"SET default_pool_size = {pool:d}")
                self.monitor.invalidate_config()
                step.details.update(before=before, after=pool)
            return pool

    async def pause(
        self, key: str, timeout: float | None = None, sink: EventSink = discard
    ) -> None:
        """PAUSE the tenant's alias: wait for in-flight transactions; on timeout name the
        clients still active and leave the pool resumed."""
        wait = self.settings.pause_timeout if timeout is None else timeout
        check_pause_timeout(wait)
        validate_tenant_key(key)
        async with self._runner.run("pool", key, sink) as op:
            tenant = await op.tenant(Action.POOL)
            async with op.step("pause", f"pausing {tenant.schema_name} (up to {wait:g}s)"):
                await self._pause_or_explain(tenant.schema_name, wait)

    async def kill(self, key: str, keep_paused: bool = False, sink: EventSink = discard) -> int:
        """KILL the alias (drops its clients and servers at once), then RESUME unless
        ``keep_paused``; returns how many clients were dropped."""
        validate_tenant_key(key)
        async with self._runner.run("pool", key, sink) as op:
            tenant = await op.tenant(Action.POOL)
            async with op.step("kill", f"dropping every connection of {tenant.schema_name}") as s:
                dropped = len(await self.clients(key))
                await self.admin.database_command("KILL", tenant.schema_name)
                if not keep_paused:
                    await self._resume(tenant.schema_name)
                s.details.update(clients_dropped=dropped, left_paused=keep_paused)
            return dropped

    async def simple(self, action: str, key: str, sink: EventSink = discard) -> None:
        """resume, disable, enable or reconnect the tenant's alias."""
        if action not in SIMPLE_ACTIONS:
            raise InvalidInput(
                f"unknown pool action {action!r}; allowed: {', '.join(SIMPLE_ACTIONS)}"
            )
        validate_tenant_key(key)
        verb, text = SIMPLE_ACTIONS[action]
        async with self._runner.run("pool", key, sink) as op:
            tenant = await op.tenant(Action.POOL)
            async with op.step(action, f"{text} {tenant.schema_name}"):
                if verb == "RESUME":
                    await self._resume(tenant.schema_name)
                else:
                    await self.admin.database_command(verb, tenant.schema_name)

    async def sync(self, sink: EventSink = discard) -> SyncReport:
        """Make the include file list exactly the ACTIVE/INACTIVE tenants, each pointing at
        :attr:`target` (host, port, dbname always repaired) with the configured default sizes,
        except a tenant whose size was set with ``pool set-size`` keeps its size; RELOAD, then
        block again the aliases of INACTIVE tenants that PgBouncer has open (it keeps
        DISABLE/PAUSE in memory only: a restart forgets them). Reports every alias it changed."""
        self._require_include()
        async with self._runner.run("pool", None, sink) as op:
            async with op.step("sync", "aligning tenant aliases with the registry") as step:
                async with self._db.acquire() as conn:
                    tenants = await self._registry.list(conn, with_config=False)
                    sized = await explicitly_sized(conn)
                with self.include.editing() as aliases:
                    wanted = {
                        t.schema_name: self._synced_alias(
                            aliases.get(t.schema_name), t.id in sized, t.schema_name
                        )
                        for t in tenants
                        if allowed(Action.POOL, t.status)
                    }
                    changes = reconcile(aliases, wanted)
                step.details["changes"] = [c.as_json() for c in changes]
                step.details["reload"] = await self._reload_if_reachable(op.info)
        inactive = [t for t in tenants if t.status is TenantStatus.INACTIVE]
        reblocked = await self._reblock(inactive, sink) if step.details["reload"] == "done" else []
        return SyncReport(tuple(changes), tuple(reblocked), str(step.details["reload"]))

    async def _reblock(self, tenants: list[Tenant], sink: EventSink) -> list[str]:
        """DISABLE + KILL (which leaves it paused) each INACTIVE tenant's alias that is open;
        each under that tenant's lock and audited; a busy tenant is left for the next sync."""
        states = parse_databases(await self.admin.show("DATABASES"))
        done = []
        for tenant in tenants:
            state = states.get(tenant.schema_name)
            if state is None or (state.paused and state.disabled):
                continue
            try:
                async with self._runner.run("pool", tenant.key, sink) as op:
                    op.tenant_id = tenant.id
                    async with op.step("reblock", f"blocking {tenant.schema_name} again"):
                        await self.admin.database_command("DISABLE", tenant.schema_name)
                        await self.admin.database_command("KILL", tenant.schema_name)
            except TenantBusy as exc:
                sink(StepEvent("pool", tenant.key, "reblock", Phase.INFO, exc.message))
                continue
            done.append(tenant.schema_name)
        return done

    # -- lifecycle hooks (inside an operation that already holds the tenant's lock) ------------

    async def add_alias(self, op: Operation, tenant: Tenant) -> None:
        """Provisioning: add the tenant's alias (keeping a size set earlier) and RELOAD."""
        async with op.step("pool", f"adding PgBouncer alias {tenant.schema_name}") as step:
            aliases, reload = await self.add_aliases([tenant], op.info)
            alias = aliases[tenant.schema_name]
            step.details.update(
                alias=alias.name, pool_size=alias.pool_size, reserve_pool=alias.reserve_pool
            )
            step.details["reload"] = reload

    async def add_aliases(
        self, tenants: list[Tenant], note: Callable[[str], None]
    ) -> tuple[dict[str, Alias], str]:
        """Add the aliases of ``tenants`` (keeping sizes set earlier, pointing an existing one
        at :attr:`target`) in one edit of the include
        file, then RELOAD once; returns the aliases by name and how the RELOAD went (see
        :meth:`_reload_if_reachable`, which tells ``note`` when PgBouncer is down). The
        caller holds the tenants' locks."""
        with self.include.editing() as aliases:
            for tenant in tenants:
                old = aliases.get(tenant.schema_name)
                aliases[tenant.schema_name] = self._synced_alias(old, True, tenant.schema_name)
            added = {t.schema_name: aliases[t.schema_name] for t in tenants}
        return added, await self._reload_if_reachable(note)

    async def remove_alias(self, op: Operation, tenant: Tenant) -> None:
        """Offboarding: remove the alias and RELOAD (PgBouncer closes its connections)."""
        async with op.step("pool_remove", f"removing PgBouncer alias {tenant.schema_name}") as s:
            with self.include.editing() as aliases:
                aliases.pop(tenant.schema_name, None)
            s.details["reload"] = await self._reload_if_reachable(op.info)

    async def block(self, op: Operation, tenant: Tenant, timeout: float, force: bool) -> bool:
        """Deactivation/offboarding: DISABLE the alias (no new clients), then PAUSE it (wait for
        in-flight transactions, up to ``timeout``; with ``force`` KILL them instead of failing).
        Returns whether the pool was touched (False: PgBouncer unreachable or no such alias)."""
        name = tenant.schema_name
        async with op.step("pool_block", f"disabling and pausing {name}") as step:
            try:
                await self.admin.database_command("DISABLE", name)
            except (PgBouncerUnavailable, NotFound) as exc:
                op.info(f"PgBouncer pool not blocked: {exc.message}")
                step.details["skipped"] = exc.message
                return False
            try:
                paused = await self.admin.pause(name, timeout)
            except PgBouncerUnavailable as exc:
                op.info(f"PgBouncer pool not paused: {exc.message}")
                step.details["skipped"] = exc.message
                return False
            if paused:
                step.details["paused"] = True
                return True
            if not force:
                await self._enable_quietly(name)
                raise OperationFailed(await self._pause_timeout_message(name, timeout))
            op.info(f"pause of {name} timed out after {timeout:g}s: killing its connections")
            await self.admin.database_command("KILL", name)  # KILL leaves the pool paused
            step.details.update(paused=True, killed=True)
            return True

    async def unblock(self, op: Operation, tenant: Tenant) -> None:
        """Reactivation or a rolled-back deactivation: RESUME and ENABLE the alias."""
        name = tenant.schema_name
        async with op.step("pool_unblock", f"resuming and enabling {name}") as step:
            try:
                await self._resume(name)
                await self.admin.database_command("ENABLE", name)
            except (PgBouncerUnavailable, NotFound) as exc:
                op.info(f"PgBouncer pool not resumed: {exc.message}")
                step.details["skipped"] = exc.message

    async def pause_for_switch(
        self, op: Operation, tenant: Tenant, timeout: float, force: bool
    ) -> bool:
        """A restore's switch: PAUSE the alias (new queries wait, in-flight transactions
        finish, up to ``timeout``; with ``force`` KILL them instead of failing). Returns whether
        the pool is paused (False: no such alias or PgBouncer unreachable, nothing to resume)."""
        name = tenant.schema_name
        try:
            paused = await self.admin.pause(name, timeout)
        except (PgBouncerUnavailable, NotFound) as exc:
            op.info(f"PgBouncer pool not paused: {exc.message}")
            return False
        if paused:
            return True
        if not force:
            raise OperationFailed(await self._pause_timeout_message(name, timeout))
        op.info(f"pause of {name} timed out after {timeout:g}s: killing its connections")
        await self.admin.database_command("KILL", name)  # KILL leaves the pool paused
        return True

    async def resume_after_switch(self, op: Operation, tenant: Tenant) -> None:
        """After a restore's switch: RECONNECT (server connections opened before the switch
        are not reused) and RESUME the alias; an unreachable PgBouncer is noted, not raised."""
        name = tenant.schema_name
        try:
            with contextlib.suppress(NotFound, OperationFailed):
                await self.admin.database_command("RECONNECT", name)
            await self._resume(name)
        except (PgBouncerUnavailable, NotFound) as exc:
            op.info(f"PgBouncer pool not resumed: {exc.message}")

    async def pool_state(self, name: str) -> str:
        """``paused``, ``disabled``, ``active``, ``absent`` (no such alias), or
        ``unreachable``."""
        try:
            state = await self.alias_state(name)
        except PgBouncerUnavailable:
            return "unreachable"
        if state is None:
            return "absent"
        paused, disabled = state
        return "paused" if paused else "disabled" if disabled else "active"

    async def _pause_or_explain(self, name: str, wait: float) -> None:
        if not await self.admin.pause(name, wait):
            raise OperationFailed(await self._pause_timeout_message(name, wait))


def check_pause_timeout(timeout: float) -> None:
    """InvalidInput unless a pause may wait ``timeout`` seconds (more than 0, at most 3600)."""
    if not 0 < timeout <= 3600:
        raise InvalidInput(
            f"timeout must be between 0 and 3600 seconds, got {timeout:g}", field=Field.TIMEOUT
        )
