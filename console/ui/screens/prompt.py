"""Small modal dialogs: a one-line prompt and a typed-key confirmation."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


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

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

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
            yield Static("\n".join(f"{i}. {s}" for i, s in enumerate(self._steps, 1)))
            yield Label(f"Type the tenant key ({self._key}) to confirm:")
            yield Input(placeholder=self._key, id="confirm-input")
            yield Static("", id="confirm-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self._button, id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self._key

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        if event.value == self._key:
            self.dismiss(True)
        else:
            self.query_one("#confirm-hint", Static).update(
                f"'{event.value}' is not '{self._key}': nothing will be done. Esc cancels."
            )

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(self.query_one(Input).value == self._key)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


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
