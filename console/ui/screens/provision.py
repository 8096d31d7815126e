"""The provision form: validation as you type, with the same rules as the CLI."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Static

from console.core.errors import InvalidInput
from console.core.identifiers import validate_tenant_key


class TenantKeyValidator(Validator):
    """Accepts exactly what ``validate_tenant_key`` accepts."""

    def validate(self, value: str) -> ValidationResult:
        try:
            validate_tenant_key(value)
        except InvalidInput as exc:
            return self.failure(exc.message)
        return self.success()


class ProvisionScreen(ModalScreen[tuple[str, str] | None]):
    """Ask for a tenant key and display name; returns them or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="provision.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("Provision a new tenant", classes="dialog-title")
            yield Label("Tenant key")
            yield Input(
                placeholder="e.g. acme_outdoors",
                id="key",
                validators=[TenantKeyValidator()],
                validate_on=["changed", "submitted"],
            )
            yield Static("", id="key-error", classes="field-error")
            yield Label("Display name (optional)")
            yield Input(placeholder="Acme Outdoors", id="name", max_length=200)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Provision", id="provision", variant="success", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#key", Input).focus()

    @on(Input.Changed, "#key")
    def _key_changed(self, event: Input.Changed) -> None:
        valid = event.validation_result is not None and event.validation_result.is_valid
        problems = (
            [] if event.validation_result is None else event.validation_result.failure_descriptions
        )
        self.query_one("#key-error", Static).update("" if valid or not event.value else problems[0])
        self.query_one("#provision", Button).disabled = not valid

    @on(Input.Submitted)
    @on(Button.Pressed, "#provision")
    def _submit(self) -> None:
        key = self.query_one("#key", Input).value
        try:
            validate_tenant_key(key)
        except InvalidInput as exc:
            self.query_one("#key-error", Static).update(exc.message)
            return
        self.dismiss((key, self.query_one("#name", Input).value.strip() or key))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
