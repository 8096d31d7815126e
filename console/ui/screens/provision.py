"""The provision form: validation as you type, with the same rules as the CLI, and a live
check against the registry so a key already in use is refused here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Static

from console.core.errors import ConsoleError, InvalidInput
from console.core.identifiers import validate_tenant_key
from console.ui.hints import error_text
from console.ui.screens.prompt import FORM_BINDINGS

if TYPE_CHECKING:
    from console.ui.app import GoConsoleApp


class TenantKeyValidator(Validator):
    """Accepts exactly what ``validate_tenant_key`` accepts."""

    def validate(self, value: str) -> ValidationResult:
        try:
            validate_tenant_key(value)
        except InvalidInput as exc:
            return self.failure(error_text(exc))
        return self.success()


class ProvisionScreen(ModalScreen[tuple[str, str] | None]):
    """Ask for a tenant key and display name; returns them or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="provision.cancel"), *FORM_BINDINGS]

    @property
    def goapp(self) -> GoConsoleApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

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
            yield Static("", id="key-error", classes="field-error", markup=False)
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
        self.query_one("#provision", Button).disabled = True
        if valid:
            self._check_registry(event.value, submit=False)

    @work(group="provision-key", exclusive=True, exit_on_error=False)
    async def _check_registry(self, key: str, submit: bool) -> None:
        """Ask the registry whether ``key`` may be provisioned; say so in the form, and close
        the form with it when ``submit`` and it may."""
        error = self.query_one("#key-error", Static)
        try:
            existing = await self.goapp.service.check_new_key(key)
        except ConsoleError as exc:
            if self.query_one("#key", Input).value == key:
                error.update(error_text(exc))
            return
        if self.query_one("#key", Input).value != key:
            return  # typed on meanwhile: that value has its own check
        self.query_one("#provision", Button).disabled = False
        error.update(
            f"an earlier provision left {key!r} {existing.status}: provisioning finishes it"
            if existing is not None
            else ""
        )
        if submit:
            self.dismiss((key, self.query_one("#name", Input).value.strip() or key))

    @on(Input.Submitted)
    @on(Button.Pressed, "#provision")
    def _submit(self) -> None:
        key = self.query_one("#key", Input).value
        try:
            validate_tenant_key(key)
        except InvalidInput as exc:
            self.query_one("#key-error", Static).update(error_text(exc))
            return
        self._check_registry(key, submit=True)  # checked again: it may have been taken since

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
