"""Tenant key rules and the one helper that turns names into SQL identifiers."""

from __future__ import annotations

import re
import uuid

from console.core.errors import InvalidInput

TENANT_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,55}")
TENANT_SCHEMA_PREFIX = "tenant_"
TEMPLATE_SCHEMA = "goconsole_tenant_template"
RESERVED_KEYS = frozenset(
    {
        "admin",
        "all",
        "default",
        "goconsole",
        "none",
        "null",
        "pgbouncer",
        "postgres",
        "public",
        "root",
        "system",
        "template",
    }
)
KEY_RULE = (
    "a tenant key is 1-56 characters: a lower-case ASCII letter, then lower-case letters, "
    f"digits or '_', and not one of: {', '.join(sorted(RESERVED_KEYS))}"
)


def validate_tenant_key(key: str) -> str:
    """Return ``key`` if it is a valid tenant key; raise InvalidInput naming the rule if not."""
    if not isinstance(key, str) or TENANT_KEY_PATTERN.fullmatch(key) is None:
        raise InvalidInput(f"invalid tenant key {key!r}: {KEY_RULE}")
    if key in RESERVED_KEYS:
        raise InvalidInput(f"tenant key {key!r} is reserved: {KEY_RULE}")
    return key


def schema_for(key: str) -> str:
    """Schema name of a (validated) tenant key."""
    return TENANT_SCHEMA_PREFIX + validate_tenant_key(key)


def quote_ident(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier (the only way SQL identifiers are built)."""
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise InvalidInput(f"invalid SQL identifier {name!r}: 1-63 bytes, no NUL")
    return '"' + name.replace('"', '""') + '"'


PGBOUNCER_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def pgbouncer_name(name: str) -> str:
    """``name`` checked for use in a PgBouncer admin command or config line, which take no
    parameters and no quoting: lower-case letters, digits and '_' only."""
    if PGBOUNCER_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidInput(
            f"invalid PgBouncer database name {name!r}: 1-63 lower-case letters, digits or '_'"
        )
    return name


def qualified(schema: str, name: str) -> str:
    """``schema.name`` with both parts quoted."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


class SqlTemplate:
    """SQL written for a placeholder schema and tenant id (a template schema's DDL, a rendered
    migration), split once so that rewriting it for each tenant is a join, not a regex pass."""

    def __init__(self, sql: str, from_schema: str, from_id: uuid.UUID) -> None:
        schema = rf'"?\b{re.escape(from_schema)}\b"?'
        tenant_id = re.escape(str(from_id))
        # re.split with one group: text, placeholder, text, placeholder, ..., text
        pieces = re.split(f"({schema}|{tenant_id})", sql)
        self._texts = pieces[0::2]
        self._is_id = [piece == str(from_id) for piece in pieces[1::2]]

    def render(self, to_schema: str, to_id: uuid.UUID) -> str:
        """The SQL for ``to_schema`` (quoted) and ``to_id``."""
        schema, tenant_id = quote_ident(to_schema), str(uuid.UUID(str(to_id)))
        out = [self._texts[0]]
        for is_id, text in zip(self._is_id, self._texts[1:], strict=True):
            out.append(tenant_id if is_id else schema)
            out.append(text)
        return "".join(out)


def retarget(
    sql: str, from_schema: str, to_schema: str, from_id: uuid.UUID, to_id: uuid.UUID
) -> str:
    """Rewrite SQL written for ``from_schema``/``from_id`` (a template or a rendering
    placeholder) for another tenant; quoted and bare occurrences alike."""
    return SqlTemplate(sql, from_schema, from_id).render(to_schema, to_id)


def dollar_quoted(body: str) -> str:
    """``body`` as a dollar-quoted string constant (e.g. a DO block's code), with a tag that
    does not occur in it (the newlines keep the tag from pairing with the body's edges)."""
    tag, n = "$goconsole$", 0
    while tag in body:
        n += 1
        tag = f"$goconsole{n}$"
    return f"{tag}\n{body}\n{tag}"
