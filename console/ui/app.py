"""The Textual application: a shell of areas over one ConsoleService passed in by the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual._time import get_time  # the clock Textual stamps input events with
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.screen import Screen
from textual.signal import Signal

from console.core.cancel import Cancellation
from console.core.errors import ConsoleError, ReadOnlyMode
from console.core.events import StepEvent
from console.core.migrations.plan import MigrationPlan
from console.core.migrations.run import RunProgress
from console.core.service import ConsoleService
from console.ui.commands import ConsoleCommands, ThemeCommands
from console.ui.connection import ConnectionState, HealthProbe, Link, LinkChange
from console.ui.hints import error_text
from console.ui.keymap import AREAS, MUTATIONS, area_screen, binding_ids, mutation_behind
from console.ui.operations import OperationLauncher
from console.ui.screens.base import ConsoleScreen
from console.ui.screens.help import HelpScreen
from console.ui.screens.prompt import (
    ConfirmDrainScreen,
    ConfirmQuitScreen,
    DrainChoice,
)
from console.ui.screens.provision import ProvisionScreen
from console.ui.screens.tenant_detail import ACTIONS_BY_STATUS, TenantDetailScreen
from console.ui.themes import apply_themes, themes_dir
from console.ui.tracker import OperationTracker, OpState, TrackedOperation
from console.ui.widgets.header import ConsoleHeader

Clock = Callable[[], datetime]
DRAINING_ACTIONS = ("deactivate", "offboard")


class GoConsoleApp(App[int]):
    """goconsole's terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "goconsole"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"area('{area}')", area.capitalize(), id=f"area.{area}")
            for area, key in AREAS.items()
        ),
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        service: ConsoleService,
        *,
        clock: Clock | None = None,
        themes_folder: Path | None = None,
    ) -> None:
        super().__init__()
        self.service = service
        self.settings = service.settings
        self.read_only = service.read_only
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tracker = OperationTracker()
        self.operation_signal: Signal[TrackedOperation] = Signal(self, "operation")
        self.operations = OperationLauncher(self, service, self.tracker, self.operation_signal)
        self.migration_signal: Signal[RunProgress] = Signal(self, "migration")
        self.migration_events: Signal[StepEvent] = Signal(self, "migration-events")
        self.migration_state: RunProgress | None = None
        self.migration_cancellation = Cancellation()
        self.cluster_role = "…"
        self._themes_folder = themes_folder or themes_dir()
        self.connection = ConnectionState(self.clock)
        self.link_changes: Signal[LinkChange] = Signal(self, "link-changes")
        self.health = HealthProbe(
            self, service, self.connection, self.settings.ui.refresh_interval, self._link_changed
        )
        self.own_themes: list[str] = []
        self._screen_since = 0.0  # keys typed before this moment never act on the screen

    # -- start-up ----------------------------------------------------------------------------

    async def on_mount(self) -> None:
        apply_themes(self, self._themes_folder)
        self._apply_keymap()
        self.screen_change_signal.subscribe(self, self._screen_changed)
        await self.service.open()
        self.cluster_role = await self.service.cluster_role()
        for area in AREAS:
            self.add_mode(area, partial(area_screen, area))
        await self.switch_mode("tenants")

    def on_ready(self) -> None:
        """Start the health probe once the app runs (it probes only while the app runs), and
        the scheduler when this console hosts it."""
        self.health.start()
        if self.hosts_scheduler:
            self.run_worker(self.service.scheduler.start(), group="scheduler", exit_on_error=False)

    async def on_unmount(self) -> None:
        """Stop the scheduler (runs in progress are cancelled, the leadership given up)."""
        if self.hosts_scheduler:
            await self.service.scheduler.stop()

    @property
    def hosts_scheduler(self) -> bool:
        """Whether this console hosts the scheduler: ``[scheduler] enabled`` and not read-only
        (a read-only console shows the schedule and the leader only)."""
        return self.settings.scheduler.enabled and not self.read_only

    def scheduler_text(self) -> str:
        """The header's ``sched:`` field: this console's part in scheduling, and the worst
        health state once a check ran here (the Health screen's or the scheduled one)."""
        role = self.service.scheduler.status() if self.hosts_scheduler else "off"
        last = self.service.health.last
        return f"sched: {role}" + (f" · health {last.state.value}" if last else "")

    def search_themes(self) -> None:
        """The palette's theme list: ours first, then Textual's (when configured)."""
        self.push_screen(
            CommandPalette(providers=[ThemeCommands], placeholder="Search for themes…")
        )

    def _apply_keymap(self) -> None:
        known = binding_ids(self.BINDINGS)
        unknown = sorted(set(self.settings.keys) - known)
        if unknown:
            self.notify(
                f"unknown binding id(s) in [keys]: {', '.join(unknown)} (see ? for ids)",
                title="Key map",
                severity="warning",
                timeout=10,
                markup=False,
            )
        self.set_keymap({k: v for k, v in self.settings.keys.items() if k in known})

    def make_header(self) -> ConsoleHeader:
        """A header for a screen (each screen composes its own)."""
        header = ConsoleHeader(
            self.service.cluster_name,
            self.settings.ui.environment,
            self.read_only,
            self.clock,
            self.connection,
            self.link_changes,
            self.health.interval,
            self.scheduler_text,
        )
        header.call_after_refresh(header.set_role, self.cluster_role)
        return header

    # -- navigation ------------------------------------------------------------------------

    def area_keys(self) -> dict[str, str]:
        """Area name -> key."""
        return dict(AREAS)

    async def action_area(self, area: str) -> None:
        """Show an area's own screen (the tenants list, the pools table, …): screens opened on
        top of it there (a tenant's detail) are closed, wherever the key is pressed."""
        await self.switch_mode(area)
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    def _screen_changed(self, _screen: Screen[Any]) -> None:
        self._screen_since = get_time()

    async def on_event(self, event: events.Event) -> None:
        """Drop keys typed before the current screen became current.

        Textual resolves a key's bindings against the screen that is current when the key
        reaches the app, so keys typed during a screen change (an area switch, a dialog
        opening or closing) would otherwise run the new screen's actions, unseen.
        """
        if isinstance(event, events.Key) and event.time < self._screen_since:
            return
        await super().on_event(event)

    def on_key(self, event: events.Key) -> None:
        """Read-only mode: a key whose mutation is hidden says why nothing happens."""
        if not self.read_only or event.key in self.screen.active_bindings:
            return
        refused = mutation_behind(self.screen, event.key)
        if refused is not None:
            event.prevent_default()
            self.refuse_read_only(refused)

    def action_help(self) -> None:
        """Show the keys that apply here."""
        rows = [
            (
                self.get_key_display(b.binding),
                b.binding.description or b.binding.action,
                b.binding.id or "",
            )
            for b in self.active_bindings.values()
        ]
        self.push_screen(HelpScreen(sorted(set(rows))))

    def open_tenant(self, key: str) -> None:
        """Push the detail view of ``key`` (in the tenants area)."""
        self.push_screen(TenantDetailScreen(key))

    def focused_tenant(self, screen: Screen[Any] | None = None) -> str | None:
        """The tenant the operator is looking at on ``screen`` (default: the current one)."""
        screen = screen or self.screen
        return screen.focused_tenant() if isinstance(screen, ConsoleScreen) else None

    def actions_for(self, key: str, screen: Screen[Any] | None = None) -> tuple[str, ...]:
        """Lifecycle actions that apply to ``key`` in its known state on ``screen``."""
        screen = screen or self.screen
        status = screen.status_of(key) if isinstance(screen, ConsoleScreen) else None
        return ACTIONS_BY_STATUS[status] if status else ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.read_only and action in MUTATIONS)

    # -- mutations -------------------------------------------------------------------------

    def action_provision(self) -> None:
        """Open the provision form."""
        if self.refuse_read_only("provision"):
            return

        def chosen(result: tuple[str, str] | None) -> None:
            if result is not None:
                key, name = result
                self.operations.tenant_operation(
                    "provision", key, lambda sink: self.service.provision(key, name, sink)
                )
                self.open_tenant(key)

        self.push_screen(ProvisionScreen(), chosen)

    def request_action(self, action: str, key: str) -> None:
        """Run a lifecycle action on ``key``, after a typed confirmation when destructive."""
        if self.refuse_read_only(action) or self.still_running(key):
            return
        name = "provision" if action == "resume_provision" else action
        if action not in DRAINING_ACTIONS:
            calls: dict[str, Callable[[Callable[[StepEvent], None]], Awaitable[object]]] = {
                "reactivate": lambda sink: self.service.reactivate(key, sink),
                "resume_provision": lambda sink: self.service.provision(key, sink=sink),
            }
            self.operations.tenant_operation(name, key, calls[action])
            return
        dialog = ConfirmDrainScreen(
            action,
            key,
            partial(self.service.lifecycle.steps, action, key),
            self.settings.lifecycle.drain_timeout,
        )

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.operations.tenant_operation(
                    name, key, partial(self._drain_call, action, key, dialog.choice)
                )
            else:
                self.notify(f"{action} {key} cancelled: nothing was done")

        self.push_screen(dialog, confirmed)

    def still_running(self, key: str) -> bool:
        """Say so and return True when an operation started here on ``key`` still runs."""
        running = self.tracker.latest(key)
        if running is not None and running.state is OpState.RUNNING:
            self.notify(f"{running.name} {key} is still running", severity="warning")
            return True
        return False

    def _drain_call(
        self, action: str, key: str, choice: DrainChoice, sink: Callable[[StepEvent], None]
    ) -> Awaitable[object]:
        """Deactivate or offboard ``key`` with the dialog's timeout and force."""
        run = self.service.deactivate if action == "deactivate" else self.service.offboard
        return run(key, timeout=choice.timeout, force=choice.force, sink=sink)

    def refuse_read_only(self, action: str) -> bool:
        if self.read_only:
            refusal = ReadOnlyMode.refusing(action)
            self.notify(refusal.message, title=refusal.title, severity="error")
        return self.read_only

    def migration_running(self) -> bool:
        """Whether a migration run started here is in progress."""
        return any(w.group == "migrations" and w.is_running for w in self.workers)

    def start_migration(self, plan: MigrationPlan, concurrency: int) -> None:
        """Run ``plan`` in an app-level worker: it goes on while screens change."""
        self.migration_cancellation = Cancellation()
        self._run_migration(plan, concurrency, self.migration_cancellation)

    def cancel_migration(self) -> bool:
        """Start no new tenants in the run in progress (those in flight finish); False when
        no run is in progress."""
        if not self.migration_running():
            return False
        self.migration_cancellation.cancel()
        return True

    @work(group="migrations", exclusive=True, exit_on_error=False)
    async def _run_migration(
        self, plan: MigrationPlan, concurrency: int, cancellation: Cancellation
    ) -> None:
        def progress(state: RunProgress) -> None:
            self.migration_state = state
            self.migration_signal.publish(state)

        try:
            state = await self.service.migrations.run(
                plan,
                concurrency,
                progress,
                self.migration_events.publish,
                cancellation=cancellation,
            )
        except ConsoleError as exc:
            self.notify(
                error_text(exc), title=f"Migration: {exc.title}", severity="error", markup=False
            )
            return
        finally:
            if self.migration_state is not None:
                self.migration_signal.publish(self.migration_state)
        self.notify(
            f"{state.done} migrated, {state.failed} failed, {state.skipped} busy",
            title="Migration run finished",
            severity="error" if state.failed or state.skipped else "information",
        )

    def _link_changed(self, change: LinkChange) -> None:
        """A link was lost or came back: every header follows; one notification each way."""
        self.link_changes.publish(change)
        name = "the database" if change.link is Link.DATABASE else "PgBouncer"
        if change.outage_s is None:
            self.notify(
                f"{name}: {change.error} — the header shows it until it is back; data on "
                "screen is stale",
                title=f"Lost {name}",
                severity="error",
                markup=False,
            )
        else:
            self.notify(f"reconnected to {name} after {change.outage_s:.0f} s", title="Reconnected")

    def report_refresh_error(self, what: str, exc: BaseException) -> bool:
        """Notify that view ``what`` failed to refresh, unless the header shows the database
        lost (then say nothing and return False); the health probe checks the links now."""
        self.health.probe_soon()
        if self.connection.lost_since(Link.DATABASE) is not None:
            return False
        self.notify(
            f"{what}: {exc} (retrying)",
            title="Refresh failed",
            severity="error",
            markup=False,  # error texts may hold square brackets
        )
        return True

    async def action_quit(self) -> None:
        """Quit; ask first when operations are running."""
        running = [f"{op.name} {op.key}" for op in self.tracker.running()]
        if self.migration_running():
            running.append("a migration run (tenants in flight finish; a rerun completes it)")
        if not running:
            self.exit(0)
            return

        def decided(leave: bool | None) -> None:
            if leave:
                self.exit(0)

        self.push_screen(ConfirmQuitScreen(running), decided)
