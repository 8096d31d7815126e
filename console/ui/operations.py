"""The one way the UI starts an operation: tracked per tenant (its events stream to the screens
through a signal, and survive screen changes), run in a named app worker, its outcome written
to the tracker and notified."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.signal import Signal

from console.core.errors import ConsoleError
from console.core.events import EventSink, StepEvent
from console.core.service import ConsoleService
from console.ui.hints import error_text
from console.ui.tracker import OperationTracker, OpState, TrackedOperation

Call = Callable[[EventSink], Awaitable[Any]]


@dataclass(frozen=True)
class Outcome:
    """How an operation ended: the tracker's last line and the notification."""

    failed: bool
    line: str
    message: str
    title: str


Describe = Callable[[Any, ConsoleError | None], Awaitable[Outcome]]


class OperationLauncher:
    """Starts the tenant and pool operations of the screens."""

    def __init__(
        self,
        app: App[Any],
        service: ConsoleService,
        tracker: OperationTracker,
        signal: Signal[TrackedOperation],
    ) -> None:
        self._app = app
        self._service = service
        self._tracker = tracker
        self._signal = signal

    def tenant_operation(
        self, name: str, key: str, call: Call, report: Callable[[Any], list[str]] | None = None
    ) -> None:
        """A lifecycle operation on ``key``; the outcome says the state it left the tenant in
        (reading that one tenant); ``report`` turns what ``call`` returned into the lines
        shown after its events (a restore's report)."""

        async def describe(result: object, error: ConsoleError | None) -> Outcome:
            state = await self._tenant_state(key)
            if error is not None:
                line = f"FAILED: {error_text(error)} — tenant is now {state}"
                return Outcome(True, line, line, f"{name} {key}: {error.title}")
            op = self._tracker.latest(key)
            if report is not None and op is not None:
                op.report = report(result)
            line = f"done — tenant is now {state}"
            return Outcome(False, line, f"{name} {key}: {line}", "Done")

        self._start(name, key, call, describe)

    def pool_operation(
        self, name: str, key: str | None, call: Call, after: Callable[[], None]
    ) -> None:
        """A pool action (on ``key``'s pool, or on PgBouncer when None): ``call`` returns what
        it did; ``after`` runs when it has ended, however."""
        what = f"pool {name} {key}" if key else f"pool {name}"

        async def describe(result: object, error: ConsoleError | None) -> Outcome:
            if error is not None:
                text = error_text(error)
                return Outcome(True, f"FAILED: {text}", f"{what}: {text}", error.title)
            return Outcome(False, f"done — {result}", f"{what}: {result}", "Done")

        self._start(f"pool {name}", key, call, describe, after)

    def report_operation(
        self,
        name: str,
        key: str,
        call: Call,
        summarize: Callable[[Any], tuple[bool, str]],
        after: Callable[[], None],
    ) -> TrackedOperation:
        """An operation over several tenants (a backup or verify run), tracked under ``key``
        (a tenant key, or a label such as ``all tenants``): ``summarize`` turns its report
        into (any failure, one line); ``after`` runs when it has ended, however."""

        async def describe(result: object, error: ConsoleError | None) -> Outcome:
            if error is not None:
                line = f"FAILED: {error.message}"
                return Outcome(True, line, f"{name} {key}: {error.message}", error.title)
            failed, line = summarize(result)
            title = "Finished with failures" if failed else "Done"
            return Outcome(failed, line, f"{name} {key}: {line}", title)

        self._start(name, key, call, describe, after)
        op = self._tracker.latest(key)
        assert op is not None
        return op

    async def _tenant_state(self, key: str) -> str:
        """The tenant's status word, as read now."""
        try:
            tenant = await self._service.tenant(key)
        except ConsoleError:
            return "unknown (cluster unreachable)"
        return tenant.status.value if tenant else "not registered"

    def _start(
        self,
        name: str,
        key: str | None,
        call: Call,
        describe: Describe,
        after: Callable[[], None] | None = None,
    ) -> None:
        op = self._tracker.start(name, key) if key else None
        self._app.run_worker(
            self._run(op, call, describe, after),
            name=name,
            group="operations",
            exit_on_error=False,
        )

    async def _run(
        self,
        op: TrackedOperation | None,
        call: Call,
        describe: Describe,
        after: Callable[[], None] | None,
    ) -> None:
        def sink(event: StepEvent) -> None:
            if op is not None:
                op.events.append(event)
                self._signal.publish(op)

        try:
            try:
                result, error = await call(sink), None
            except ConsoleError as exc:
                result, error = None, exc
            if op is not None:
                op.state = OpState.FAILED if error is not None else OpState.SUCCEEDED
            outcome = await describe(result, error)
            if op is not None:
                op.outcome = outcome.line
            self._app.notify(
                outcome.message,
                title=outcome.title,
                severity="error" if outcome.failed else "information",
                markup=False,
            )
        finally:
            if op is not None:
                self._signal.publish(op)
            if after is not None:
                after()
