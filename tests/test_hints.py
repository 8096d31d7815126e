"""Hints: the core names no front end; the CLI words a hint as its flag or command (as it printed
before hints existed), the UI as a key or action and never as a flag."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from console.cli import hints as cli_hints
from console.core.errors import InvalidInput, NotFound, OperationFailed
from console.core.hints import Field, Force, Hint, ListTenants, LowerConcurrency, RunInit
from console.core.migrations.concurrency import concurrency_in_range
from console.ui import hints as ui_hints

HINTS = [cls(3) if cls is LowerConcurrency else cls() for cls in get_args(Hint)]


@pytest.mark.parametrize("hint", HINTS, ids=lambda h: type(h).__name__)
def test_every_hint_has_words_in_both_front_ends_and_the_ui_names_no_flag(hint: Hint) -> None:
    assert cli_hints.hint_text(hint)
    assert not re.search(r"--[a-z]", ui_hints.hint_text(hint))


def test_the_cli_prints_what_it_printed_before_hints() -> None:
    drained = OperationFailed(
        "1 backend(s) still hold locks on tenant_acme after 2s: pid 7", hint=Force()
    )
    assert cli_hints.error_text(drained) == (
        "1 backend(s) still hold locks on tenant_acme after 2s: pid 7 — rerun with --force to "
        "terminate them or with a longer --timeout"
    )
    missing = NotFound("no tenant with key 'x'", hint=ListTenants())
    assert cli_hints.error_text(missing) == "no tenant with key 'x' (see: goconsole tenants list)"
    with pytest.raises(InvalidInput) as err:
        concurrency_in_range(0)
    assert cli_hints.error_text(err.value) == "--concurrency must be between 1 and 32, got 0"


def test_the_ui_shows_the_core_words_and_an_action() -> None:
    with pytest.raises(InvalidInput) as err:
        concurrency_in_range("40")
    assert ui_hints.error_text(err.value) == "concurrency must be between 1 and 32, got '40'"
    drained = OperationFailed("1 backend(s) still hold locks", hint=Force())
    assert "Force" in ui_hints.error_text(drained)
    assert ui_hints.error_text(NotFound("x", hint=RunInit())).startswith("x; initialise")


def test_a_field_error_starts_with_the_field_word() -> None:
    with pytest.raises(ValueError, match="must start with it"):
        InvalidInput("must be between 1 and 32", field=Field.CONCURRENCY)
