"""The pool size form: a tenant's pool size and reserve, or the default pool size, checked as
they are typed against the allowed range. Nothing is applied until a value is changed: a bare
Enter on the prefilled values does nothing."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.core.errors import InvalidInput
from console.core.pools.aliases import check_pool_size
from console.ui.hints import error_text

SizeChoice = tuple[str, str | None]


class PoolSizeScreen(ModalScreen[SizeChoice | None]):
    """Pool size and (unless ``reserve`` is None) reserve; dismisses with the typed values,
    or None when cancelled. Apply stays disabled until a value differs from the current one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pool_size.cancel")]

    def __init__(self, title: str, size: int, reserve: int | None, limit: int) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._initial = size
        self._reserve = reserve
        self._limit = limit

    def compose(self) -> ComposeResult:
        limit = self._limit
        rule = f"Allowed: pool size 1-{limit}"
        if self._reserve is not None:
            rule += f", reserve 0-{limit}, together at most {limit}"
        with Vertical(classes="dialog-box"):
            # A Static wraps a long title (the default-size one) instead of cutting it.
            yield Static(self._title, classes="dialog-title", markup=False)
            yield Static(rule, id="pool-size-range")
            yield Label("Pool size")
            yield Input(value=str(self._initial), id="pool-size")
            if self._reserve is not None:
                yield Label("Reserve pool")
                yield Input(value=str(self._reserve), id="pool-reserve")
            yield Static("", id="pool-size-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Apply", id="apply", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#pool-size", Input).focus()

    def _values(self) -> SizeChoice:
        size = self.query_one("#pool-size", Input).value.strip()
        if self._reserve is None:
            return size, None
        return size, self.query_one("#pool-reserve", Input).value.strip()

    def _unchanged(self) -> bool:
        size, reserve = self._values()
        initial = None if self._reserve is None else str(self._reserve)
        return size == str(self._initial) and reserve == initial

    def _problem(self) -> str:
        size, reserve = self._values()
        if self._unchanged():
            return "unchanged: type a new value to apply (Esc cancels)"
        try:
            check_pool_size(size, "0" if reserve is None else reserve, self._limit)
        except InvalidInput as exc:
            return error_text(exc)
        return ""

    @on(Input.Changed)
    def _changed(self) -> None:
        problem = self._problem()
        self.query_one("#pool-size-error", Static).update("" if self._unchanged() else problem)
        self.query_one("#apply", Button).disabled = bool(problem)

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def _submit(self) -> None:
        problem = self._problem()
        if problem:
            self.query_one("#pool-size-error", Static).update(problem)
        else:
            self.dismiss(self._values())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
