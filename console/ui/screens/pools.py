"""Pools: every PgBouncer pool as a gauge, busiest first, with the totals against the global
limits, sparklines of the last minutes, and the pool actions.

One poll at a time (:class:`PollingScreen`): a snapshot, then the next poll is scheduled (the
configured interval, longer while PgBouncer is unreachable). While it is down the last data
stays on screen, marked stale, and the status line says what failed and when the next try is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from console.core.errors import ConsoleError
from console.core.events import EventSink
from console.core.pools.admin_spec import DSN_ENV
from console.core.pools.aliases import size_limit
from console.core.pools.monitor import PoolSnapshot, PoolView
from console.ui.connection import Link
from console.ui.hints import error_text
from console.ui.polling import PollingScreen
from console.ui.pool_history import PoolHistory
from console.ui.screens.base import Command
from console.ui.screens.pool_forms import PoolSizeScreen, SizeChoice
from console.ui.screens.prompt import ConfirmKeyScreen
from console.ui.widgets.pool_gauge import PoolTable, pool_cells, summary
from console.ui.widgets.pool_plots import PoolPlots

Action = Callable[[EventSink], Awaitable[str]]
ACTIONS = ("resize", "pause", "disable", "reconnect", "kill", "default")
PAST = {
    "resume": "resumed",
    "enable": "enabled: clients can connect",
    "disable": "disabled: new clients are refused",
    "reconnect": "server connections are being recycled",
}


def seconds(delay: float) -> str:
    """``4 s``, ``0.25 s``, ``19.2 s``."""
    return f"{delay:.3g} s"


class PoolsScreen(PollingScreen):
    """PgBouncer's pools; actions apply to the tenant pool under the cursor."""

    POLL_NAME = "pools"
    POLL_HIDDEN = True  # the history keeps filling while another area is shown
    SOURCE = Link.PGBOUNCER

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "pool('resize')", "Resize…", id="pools.resize"),
        Binding("z", "pool('pause')", "Pause/Resume", id="pools.pause"),
        Binding("d", "pool('disable')", "Disable/Enable", id="pools.disable"),
        Binding("r", "pool('reconnect')", "Reconnect", id="pools.reconnect"),
        Binding("k", "pool('kill')", "Kill…", id="pools.kill"),
        Binding("D", "pool('default')", "Default size…", id="pools.default"),
        Binding("ctrl+r", "refresh_now", "Refresh", id="pools.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="pools")
        self.snapshot: PoolSnapshot | None = None
        self.history: PoolHistory | None = None
        self.error: str | None = None  # why the last poll failed (None: it worked)
        self.retry_in = 0.0
        self.polls = 0
        self._updated = ""

    @property
    def configured(self) -> bool:
        """Whether PgBouncer's pools can be read (else the screen explains how); without an
        include file they are shown with only the actions that need none."""
        return self.goapp.service.pools.monitored

    @property
    def aliases_managed(self) -> bool:
        """Whether the include file is configured (resize rewrites it)."""
        return self.goapp.service.pools.configured

    def compose(self) -> ComposeResult:
        yield self.goapp.make_header()
        if not self.configured:
            yield Static(self._how_to_configure(), id="pool-not-configured", markup=False)
        else:
            yield Static("connecting to PgBouncer…", id="pool-status", markup=False)
            yield Static("", id="pool-summary", markup=False)
            yield Static("", id="pool-no-server", markup=False)
            yield PoolPlots()
            yield PoolTable(id="pool-table")
        yield Footer()

    def _how_to_configure(self) -> str:
        settings = self.goapp.settings
        bouncer = settings.pgbouncer
        missing = []
        if self.goapp.service.pools.spec is None:
            missing.append("admin_dsn")
        if not bouncer.include_file:
            missing.append("include_file")
        return "\n".join(
            [
                "PgBouncer is not configured, so there are no pools to show.",
                f"Missing: [pgbouncer] {' and '.join(missing)} (config: {settings.source}).",
                "",
                "Add to the config file:",
                "    [pgbouncer]",
                '    admin_dsn = "host=10.0.0.5 port=6432 user=goconsole_admin"',
                '    include_file = "/etc/pgbouncer/goconsole_tenants.ini"',
                "",
                "admin_dsn reaches PgBouncer's admin console (a user in admin_users; password "
                f"from ${bouncer.admin_password_env}; ${DSN_ENV} overrides it). include_file "
                "holds the tenant aliases goconsole writes; pgbouncer.ini needs:",
                "    %include /etc/pgbouncer/goconsole_tenants.ini",
                "Then restart goconsole; `goconsole pool sync` writes the existing tenants' "
                "aliases.",
            ]
        )

    def on_mount(self) -> None:
        if not self.configured:
            return
        bouncer = self.goapp.settings.pgbouncer
        self.history = PoolHistory(bouncer.history_minutes, bouncer.poll_interval)
        self.query_one(PoolTable).focus()
        self.start_polling()

    def on_screen_resume(self) -> None:
        if self.configured and (self.snapshot is not None or self.error is not None):
            self._show()

    # -- polling ------------------------------------------------------------------------------

    def poll_interval(self) -> float:
        return self.goapp.settings.pgbouncer.poll_interval

    def next_poll_delay(self) -> float:
        """The interval, longer while PgBouncer is unreachable (the monitor counts)."""
        return self.goapp.service.pools.monitor.next_delay(self.poll_interval())

    async def poll(self) -> None:
        """One snapshot, added to the history and shown."""
        snapshot = await self.goapp.service.pools.snapshot()
        self.snapshot, self.error = snapshot, None
        self._updated = self.goapp.clock().strftime("%H:%M:%SZ")
        self.polls += 1
        assert self.history is not None
        self.history.add(snapshot)
        if self.is_current:
            self._show()

    def poll_failed(self, exc: Exception) -> None:
        """Shown on the status line; errors other than PgBouncer's are notified too."""
        if not isinstance(exc, ConsoleError):
            super().poll_failed(exc)
        message = error_text(exc) if isinstance(exc, ConsoleError) else str(exc)
        self.error = " ".join(message.split())  # one line (driver messages hold tabs)
        self.retry_in = self.next_poll_delay()
        if self.is_current:
            self._show()

    # -- rendering ----------------------------------------------------------------------------

    def _show(self) -> None:
        table = self.query_one(PoolTable)
        stale = self.error is not None
        status = self.query_one("#pool-status", Static)
        status.set_class(stale, "down")
        table.set_class(stale, "stale")
        self.query_one("#pool-summary", Static).set_class(stale, "stale")
        if stale:
            shown = f"showing data from {self._updated} (stale)" if self.snapshot else "no data yet"
            status.update(f"✗ {self.error} — retrying in {seconds(self.retry_in)} · {shown}")
            return
        snapshot = self.snapshot
        assert snapshot is not None and self.history is not None
        interval = self.goapp.settings.pgbouncer.poll_interval
        note = " · rates restarted (PgBouncer restarted)" if snapshot.rates_reset else ""
        version = snapshot.version
        if not version.lower().startswith("pgbouncer"):
            version = f"PgBouncer {version}"
        if not self.aliases_managed:
            note += " · no include_file: resize off"
        status.update(
            f"✓ {version} · {len(snapshot.pools)} pool(s), busiest first · "
            f"polled every {seconds(interval)} · updated {self._updated}{note}"
        )
        styles = table.cell_styles()
        self.query_one("#pool-summary", Static).update(summary(snapshot, styles))
        self._show_no_server(snapshot)
        self.query_one(PoolPlots).show(self.history)
        table.show({v.name: pool_cells(v, styles) for v in snapshot.pools})

    def _show_no_server(self, snapshot: PoolSnapshot) -> None:
        """One line on the first pool whose clients wait with no server connection, and why;
        hidden when there is none."""
        stuck = [v for v in snapshot.pools if v.reason is not None]
        line = self.query_one("#pool-no-server", Static)
        line.display = bool(stuck)
        if stuck:
            more = f" (+{len(stuck) - 1} more pools)" if len(stuck) > 1 else ""
            line.update(f"✗ {stuck[0].name}: clients wait, no server: {stuck[0].reason}{more}")

    def cursor_alias(self) -> str | None:
        """The alias under the cursor."""
        return self.query_one(PoolTable).cursor_key()

    def shown_aliases(self) -> list[str]:
        """Aliases in table order (for tests)."""
        return self.query_one(PoolTable).row_keys()

    def view_of(self, tenant: str | None) -> PoolView | None:
        """The tenant's pool in the last snapshot."""
        if self.snapshot is None or tenant is None:
            return None
        return next((v for v in self.snapshot.pools if v.tenant == tenant), None)

    def selected(self) -> PoolView | None:
        """The pool under the cursor, as last polled."""
        alias = self.cursor_alias()
        if self.snapshot is None or alias is None:
            return None
        return next((v for v in self.snapshot.pools if v.name == alias), None)

    def focused_tenant(self) -> str | None:
        """The tenant whose pool is under the cursor."""
        view = self.selected()
        return None if view is None else view.tenant

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pool":
            return self.configured and not self.goapp.read_only
        if action == "refresh_now":
            return self.configured
        return True

    def action_refresh_now(self) -> None:
        self.poll_soon()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        view = self.selected()
        if view is not None and view.tenant is not None:
            self.goapp.open_tenant(view.tenant)

    def action_pool(self, action: str) -> None:
        self.request(action, self.focused_tenant())

    def size_limit(self) -> int:
        """Largest pool size + reserve: [pgbouncer] max_pool_size, or PgBouncer's
        max_db_connections when lower."""
        bouncer = self.goapp.settings.pgbouncer
        return size_limit(bouncer, self.snapshot.limits) if self.snapshot else bouncer.max_pool_size

    def request(self, action: str, key: str | None) -> None:
        """Start ``action`` (one of ACTIONS) on tenant ``key``'s pool, asking first where the
        action needs it (pause, disable: the opposite when the pool already is)."""
        if self.goapp.refuse_read_only(f"pool {action}"):
            return
        if action == "default":
            self._ask_default()
            return
        view = self.view_of(key)
        if key is None or view is None:
            self.notify("select a tenant's pool first", severity="warning")
            return
        if action == "resize" and not self.aliases_managed:
            self.notify(
                "resize rewrites the tenant's alias, and no [pgbouncer] include_file is "
                "configured: the pools are shown, the other actions work",
                title="Resize unavailable",
                severity="warning",
            )
        elif action == "resize":
            self._ask_size(key, view)
        elif action == "kill":
            self._ask_kill(key, view)
        elif action == "pause" and not view.paused:
            self._run("pause", key, partial(self._pause, key))
        elif action in {"pause", "disable", "reconnect"}:
            verb = {
                "pause": "resume",
                "disable": "enable" if view.disabled else "disable",
                "reconnect": "reconnect",
            }[action]
            self._run(verb, key, partial(self._simple, verb, key))
        else:
            raise ValueError(f"unknown pool action {action!r}")

    def _ask_size(self, key: str, view: PoolView) -> None:
        def chosen(choice: SizeChoice | None) -> None:
            if choice is not None:
                self._run("resize", key, partial(self._set_size, key, choice))

        title = f"Pool size of {key} ({view.name})"
        self.app.push_screen(
            PoolSizeScreen(title, view.pool_size, view.reserve_pool, self.size_limit()), chosen
        )

    def _ask_default(self) -> None:
        def chosen(choice: SizeChoice | None) -> None:
            if choice is not None:
                self._run("default size", None, partial(self._set_default, choice[0]))

        size = self.snapshot.limits.default_pool_size if self.snapshot else 0
        title = "Default pool size\nSET default_pool_size: pools without their own size"
        self.app.push_screen(PoolSizeScreen(title, size, None, self.size_limit()), chosen)

    def _ask_kill(self, key: str, view: PoolView) -> None:
        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run("kill", key, partial(self._kill, key))
            else:
                self.notify(f"kill {key} cancelled: nothing was done")

        steps = [
            f"drop every client connection of {view.name} at once ({view.pool.cl_active} "
            f"active, {view.pool.cl_waiting} waiting at the last poll): open transactions are "
            "rolled back",
            "close its server connections",
            "resume the pool: clients can connect again",
        ]
        title = f"Kill every connection of {key}'s pool ({view.name})?"
        self.app.push_screen(
            ConfirmKeyScreen("kill", key, steps, title=title, button="Kill"), confirmed
        )

    async def _set_size(self, key: str, choice: SizeChoice, sink: EventSink) -> str:
        alias = await self.goapp.service.pools.set_size(key, choice[0], choice[1], sink)
        return f"pool size {alias.pool_size}, reserve {alias.reserve_pool}"

    async def _set_default(self, size: str, sink: EventSink) -> str:
        return f"default_pool_size is {await self.goapp.service.pools.set_default(size, sink)}"

    async def _pause(self, key: str, sink: EventSink) -> str:
        await self.goapp.service.pools.pause(key, sink=sink)
        return "paused: no transaction runs until it is resumed"

    async def _simple(self, verb: str, key: str, sink: EventSink) -> str:
        await self.goapp.service.pools.simple(verb, key, sink)
        return PAST[verb]

    async def _kill(self, key: str, sink: EventSink) -> str:
        dropped = await self.goapp.service.pools.kill(key, sink=sink)
        return f"{dropped} client(s) dropped; the pool is resumed"

    def _run(self, name: str, key: str | None, call: Action) -> None:
        """Run one pool action; its events go to the tracker (the tenant's detail view shows
        them), its outcome to a notification, and the pools are polled right after."""
        self.goapp.operations.pool_operation(name, key, call, self.poll_soon)

    def palette_commands(self) -> list[Command]:
        """Command palette entries: the default pool size, and the actions on the pool under
        the cursor (none in read-only mode)."""
        if not self.configured or self.goapp.read_only:
            return []
        found: list[Command] = [
            ("Set the default pool size", partial(self.request, "default", None), "pools")
        ]
        view = self.selected()
        key = None if view is None else view.tenant
        if view is None or key is None:
            return found
        entries = [
            ("resize", f"Resize pool of {key}", "pool size and reserve"),
            ("pause", f"{'Resume' if view.paused else 'Pause'} pool of {key}", "PgBouncer"),
            ("disable", f"{'Enable' if view.disabled else 'Disable'} pool of {key}", "PgBouncer"),
            ("reconnect", f"Reconnect pool of {key}", "recycle server connections"),
            ("kill", f"Kill every connection of {key}'s pool", "asks for the tenant key"),
        ]
        found += [(label, partial(self.request, a, key), text) for a, label, text in entries]
        return found
