"""Rewriting SQL written for a placeholder schema and tenant id (template DDL, rendered
migrations) for one tenant: the split-once SqlTemplate against a plain regex substitution."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from console.core.identifiers import SqlTemplate, quote_ident

PLACEHOLDER = "goconsole_tenant_template"
PLACEHOLDER_ID = uuid.UUID(int=0)
FRAGMENTS = [
    f"{PLACEHOLDER}.customers",
    f'"{PLACEHOLDER}".orders',
    f"{PLACEHOLDER}s",  # a longer word: not the placeholder
    f"x{PLACEHOLDER}",
    str(PLACEHOLDER_ID),
    "CREATE TABLE ",
    " (id uuid);\n",
    "'",
    '"',
    "$$",
]


def substituted(sql: str, schema: str, tenant_id: uuid.UUID) -> str:
    """The obvious rewrite: every quoted or bare whole-word placeholder, then the id."""
    pattern = re.compile(rf'"?\b{re.escape(PLACEHOLDER)}\b"?')
    text = pattern.sub(lambda _m: quote_ident(schema), sql)
    return text.replace(str(PLACEHOLDER_ID), str(tenant_id))


@given(
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    st.sampled_from(["tenant_acme", 'odd"name', "tenant_x1"]),
    st.uuids(),
)
def test_rendering_equals_substitution(sql: str, schema: str, tenant_id: uuid.UUID) -> None:
    template = SqlTemplate(sql, PLACEHOLDER, PLACEHOLDER_ID)
    assert template.render(schema, tenant_id) == substituted(sql, schema, tenant_id)


def test_one_template_renders_many_tenants_independently() -> None:
    sql = f"CREATE SCHEMA {PLACEHOLDER}; SELECT '{PLACEHOLDER_ID}' FROM \"{PLACEHOLDER}\".t;"
    template = SqlTemplate(sql, PLACEHOLDER, PLACEHOLDER_ID)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert template.render("tenant_a", a) == (
        f'CREATE SCHEMA "tenant_a"; SELECT \'{a}\' FROM "tenant_a".t;'
    )
    assert template.render("tenant_b", b) == (
        f'CREATE SCHEMA "tenant_b"; SELECT \'{b}\' FROM "tenant_b".t;'
    )
