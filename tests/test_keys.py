"""Tenant keys: every invalid shape is refused before any SQL runs.

The service under test points at a closed port and is never opened: anything that reached the
database would fail with a connection/pool error instead of InvalidInput.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.config import Settings
from console.core.errors import InvalidInput, ReadOnlyMode
from console.core.identifiers import RESERVED_KEYS, schema_for, validate_tenant_key
from console.core.service import ConsoleService

VALID_KEY = re.compile(r"[a-z][a-z0-9_]{0,55}")  # the rule: ^[a-z][a-z0-9_]{0,55}$
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/x"


def is_valid(key: str) -> bool:
    return VALID_KEY.fullmatch(key) is not None and key not in RESERVED_KEYS


@pytest.fixture(scope="module")
def offline() -> ConsoleService:
    """A service whose database cannot be reached (never opened)."""
    return ConsoleService(Settings(), dsn=UNREACHABLE_DSN)


async def assert_refused_before_sql(service: ConsoleService, key: str) -> None:
    for attempt in (
        lambda: service.provision(key),
        lambda: service.provision(key, display_name="Some Name"),
        lambda: service.deactivate(key, timeout=1),
        lambda: service.reactivate(key),
        lambda: service.offboard(key, timeout=1),
    ):
        with pytest.raises(InvalidInput) as err:
            await attempt()
        assert type(err.value) is InvalidInput
        message = str(err.value)
        assert "tenant key" in message
        assert "1-56 characters" in message


async def assert_gets_past_validation(service: ConsoleService, key: str) -> None:
    # Valid keys go on to the database, which this service never opened.
    with pytest.raises(RuntimeError, match=r"Database\.open\(\) was not awaited"):
        await service.provision(key)


INVALID_EXAMPLES = [
    "",
    "Acme",
    "a'b",
    "a;drop",
    "a;drop table tenants",
    "ünï",
    "a" * 57,
    "public",
    "postgres",
    "template",
    "1abc",
    "_abc",
    "a-b",
    "a b",
    "a\n",
    "\na",
    " a",
    "a\x00",
    'a"b',
    "a.b",
    "tenant_ACME",
    "ａbc",  # fullwidth a
    "a\u0301",  # combining accent
]


@pytest.mark.parametrize("key", INVALID_EXAMPLES, ids=repr)
async def test_invalid_key_examples_are_refused_before_sql(
    offline: ConsoleService, key: str
) -> None:
    assert not is_valid(key)
    await assert_refused_before_sql(offline, key)


@pytest.mark.parametrize("key", ["a", "a" * 56, "acme", "a1_b2", "z_", "publicx"])
async def test_valid_keys_pass_validation(offline: ConsoleService, key: str) -> None:
    assert is_valid(key)
    assert validate_tenant_key(key) == key
    assert schema_for(key) == f"tenant_{key}"
    assert len(schema_for(key).encode()) <= 63
    await assert_gets_past_validation(offline, key)


@given(key=st.text())
async def test_arbitrary_text_is_refused_before_sql_unless_valid(key: str) -> None:
    service = ConsoleService(Settings(), dsn=UNREACHABLE_DSN)
    if is_valid(key):
        await assert_gets_past_validation(service, key)
    else:
        await assert_refused_before_sql(service, key)


@given(key=st.from_regex(VALID_KEY, fullmatch=True) | st.sampled_from(sorted(RESERVED_KEYS)))
async def test_well_formed_keys_are_accepted_unless_reserved(key: str) -> None:
    service = ConsoleService(Settings(), dsn=UNREACHABLE_DSN)
    if key in RESERVED_KEYS:
        with pytest.raises(InvalidInput, match="is reserved"):
            await service.provision(key)
    else:
        await assert_gets_past_validation(service, key)


async def test_read_only_refusal_also_comes_before_sql() -> None:
    service = ConsoleService(Settings(), dsn=UNREACHABLE_DSN, read_only=True)
    with pytest.raises(ReadOnlyMode):
        await service.provision("acme")
