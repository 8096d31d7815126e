"""Small modal dialogs: a one-line prompt and typed-key confirmations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Static

from console.core.errors import InvalidInput
from console.core.tenants.lifecycle import check_drain_timeout
from console.ui.hints import error_text

# Tab and Shift+Tab move the focus as soon as they arrive. Without priority they act only
# once the focused Input has passed them back up, and keys typed right after them (already
# forwarded to that Input) land in the field being left: a fast "abc", Tab, "X" gave "abcX".
FORM_BINDINGS = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
]


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value; Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, placeholder: str) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self._title, classes="dialog-title")
            yield Input(placeholder=self._placeholder, id="prompt-input")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmKeyScreen(ModalScreen[bool]):
    """A destructive action: shows exactly what happens; only the typed tenant key confirms.

    The default answer is the safe one: Escape, Cancel, or Enter with anything else.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel"), *FORM_BINDINGS]

    def __init__(
        self,
        action: str,
        key: str,
        steps: list[str],
        *,
        title: str | None = None,
        button: str | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self._action = action
        self._key = key
        self._steps = steps
        self._title = title or f"{action.capitalize()} tenant {key}?"
        self._button = button or action.capitalize()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box danger"):
            yield Label(self._title, classes="dialog-title", markup=False)
            with VerticalScroll(id="confirm-steps", can_focus=False):
                yield Static(self._steps_text(), id="confirm-steps-text", markup=False)
            yield from self.compose_options()
            yield Label(f"Type the tenant key ({self._key}) to confirm:")
            yield Input(placeholder=self._key, id="confirm-input", compact=True)
            yield Static("", id="confirm-hint", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary", compact=True)
                yield Button(
                    self._button, id="confirm", variant="error", disabled=True, compact=True
                )

    def compose_options(self) -> Iterator[Widget]:
        """Fields between the steps and the key (none here)."""
        yield from ()

    def options_problem(self) -> str | None:
        """What is wrong with those fields, if anything."""
        return None

    def _steps_text(self) -> str:
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self._steps, 1))

    def on_mount(self) -> None:
        self.query_one("#confirm-input", Input).focus()

    def _confirmable(self) -> bool:
        typed = self.query_one("#confirm-input", Input).value
        return typed == self._key and self.options_problem() is None

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _typed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self._confirmable()

    @on(Input.Submitted)
    def _submit(self) -> None:
        typed = self.query_one("#confirm-input", Input).value
        problem = self.options_problem()
        if self._confirmable():
            self.dismiss(True)
        elif typed != self._key:
            self.query_one("#confirm-hint", Static).update(
                f"'{typed}' is not '{self._key}': nothing will be done. Esc cancels."
            )
        elif problem is not None:
            self.query_one("#confirm-hint", Static).update(
                f"{problem} (nothing was done; Esc cancels)"
            )

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(self._confirmable())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


@dataclass(frozen=True)
class DrainChoice:
    """The CLI's ``--timeout`` and ``--force`` of deactivate/offboard, chosen in the dialog."""

    timeout: float
    force: bool


class DrainTimeoutValidator(Validator):
    """Accepts exactly what the core's ``check_drain_timeout`` accepts (the CLI's rule)."""

    def validate(self, value: str) -> ValidationResult:
        try:
            check_drain_timeout(value)
        except InvalidInput as exc:
            return self.failure(error_text(exc))
        return self.success()


StepsFor = Callable[[float, bool], list[str]]


class ConfirmDrainScreen(ConfirmKeyScreen):
    """Deactivate or offboard: the typed key, plus the drain timeout (``--timeout``, checked
    as typed) and ``--force``; the step list follows both. :attr:`choice` holds them once
    confirmed."""

    def __init__(self, action: str, key: str, steps_for: StepsFor, timeout: float) -> None:
        self._steps_for = steps_for
        self._timeout = timeout
        self.choice = DrainChoice(timeout, False)
        super().__init__(action, key, steps_for(timeout, False))

    def compose_options(self) -> Iterator[Widget]:
        with Horizontal(id="drain-options"):
            yield Label("Drain timeout (s) ")
            yield Input(
                f"{self._timeout:g}",
                id="drain-timeout",
                validators=[DrainTimeoutValidator()],
                validate_on=["changed"],
                compact=True,
            )
            yield Checkbox(_force_label(False), id="drain-force", compact=True)

    def options_problem(self) -> str | None:
        try:
            check_drain_timeout(self.query_one("#drain-timeout", Input).value)
        except InvalidInput as exc:
            return error_text(exc)
        return None

    @on(Input.Changed, "#drain-timeout")
    @on(Checkbox.Changed, "#drain-force")
    def _options_changed(self) -> None:
        field = self.query_one("#drain-timeout", Input)
        force = self.query_one("#drain-force", Checkbox).value
        try:
            timeout = check_drain_timeout(field.value)
        except InvalidInput as exc:
            self.query_one("#confirm-hint", Static).update(error_text(exc))
            return
        self.query_one("#confirm-hint", Static).update("")
        self.query_one("#drain-force", Checkbox).label = _force_label(force)
        self.choice = DrainChoice(timeout, force)
        self._steps = self._steps_for(timeout, force)
        self.query_one("#confirm-steps-text", Static).update(self._steps_text())


def _force_label(force: bool) -> str:
    """The force checkbox's label, which says its state in words (not by colour alone)."""
    return "force: YES, terminate at timeout" if force else "force: no, fail at timeout"


class ConfirmQuitScreen(ModalScreen[bool]):
    """Quitting while operations run: default is to stay."""

    BINDINGS = [
        Binding("escape,n", "stay", "Stay", id="quit.stay"),
        Binding("y", "leave", "Quit anyway", id="quit.leave"),
    ]

    def __init__(self, running: list[str]) -> None:
        super().__init__(classes="dialog")
        self._operations = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box danger"):
            yield Label("Operations are still running", classes="dialog-title")
            yield Static("\n".join(f"• {r}" for r in self._operations))
            yield Static(
                "Quitting interrupts them (each tenant stays in a state a rerun finishes)."
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stay", id="stay", variant="primary")
                yield Button("Quit anyway (y)", id="leave", variant="error")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    @on(Button.Pressed, "#stay")
    def action_stay(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#leave")
    def action_leave(self) -> None:
        self.dismiss(True)
