"""libpq connection strings without a driver: ``key=value`` strings and ``postgresql://`` URIs
parsed into their keywords, and keywords written back as a ``key=value`` string.

Both follow libpq (``PQconninfoParse``, which psycopg's ``conninfo_to_dict`` calls): the same
keywords, quoting, URI percent-decoding, multi-host lists and messages, keywords returned in
libpq's order. Every command resolves its DSN, so this keeps a driver out of start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# libpq 18's keywords in its own order (PQconndefaults), which parsed dicts follow.
# fmt: off
KEYWORDS = (
    "service", "user", "password", "passfile", "channel_binding", "connect_timeout", "dbname",
    "host", "hostaddr", "port", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "sslmode", "sslnegotiation", "sslcompression",
    "sslcert", "sslkey", "sslcertmode", "sslpassword", "sslrootcert", "sslcrl", "sslcrldir",
    "sslsni", "requirepeer", "require_auth", "min_protocol_version", "max_protocol_version",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode", "krbsrvname", "gsslib",
    "gssdelegation", "replication", "target_session_attrs", "load_balance_hosts",
    "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id",
    "oauth_client_secret", "oauth_scope", "sslkeylogfile",
)
# fmt: on
_ORDER = {keyword: i for i, keyword in enumerate(KEYWORDS)}
_URI_PREFIXES = ("postgresql://", "postgres://")
_SPACE = " \t\n\v\f\r"  # C isspace(), as libpq reads the string
_NEEDS_QUOTES = re.compile(r"\s")
_ESCAPED = re.compile(r"([\\'])")


class ConninfoError(ValueError):
    """A connection string libpq would refuse; the message is libpq's."""


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """The keywords of ``conninfo`` (empty values kept, absent ones left out), as
    ``PQconninfoParse`` reads them; raises ConninfoError with libpq's message."""
    values: dict[str, str] = {}
    if conninfo.startswith(_URI_PREFIXES):
        _parse_uri(conninfo, values)
    else:
        _parse_pairs(conninfo, values)
    for keyword, value in values.items():
        if any("\udc80" <= c <= "\udcff" for c in value):
            raise ConninfoError(f"{keyword}: percent-encoded bytes that are not UTF-8")
    return dict(sorted(values.items(), key=lambda item: _ORDER[item[0]]))


def make_conninfo(params: Mapping[str, str]) -> str:
    """``key=value`` pairs, each value quoted the way libpq reads it back (psycopg's
    ``make_conninfo``); raises ConninfoError for a keyword libpq does not know."""
    for keyword in params:
        _check_keyword(keyword)
    return " ".join(f"{keyword}={_quote(value)}" for keyword, value in params.items())


def _quote(value: str) -> str:
    if not value:
        return "''"
    value = _ESCAPED.sub(r"\\\1", value)
    return f"'{value}'" if _NEEDS_QUOTES.search(value) else value


def _check_keyword(keyword: str) -> None:
    if keyword not in _ORDER:
        raise ConninfoError(f'invalid connection option "{keyword}"')


def _store(values: dict[str, str], keyword: str, value: str) -> None:
    """libpq's conninfo_storeval: ``requiressl`` becomes ``sslmode``, unknown keywords fail."""
    if keyword == "requiressl":
        keyword, value = "sslmode", "require" if value.startswith("1") else "prefer"
    _check_keyword(keyword)
    values[keyword] = value


def _parse_pairs(text: str, values: dict[str, str]) -> None:
    """``key = value`` pairs separated by blanks; a value is a word (backslash escapes the
    next character) or a single-quoted string (the same escapes)."""
    i, end = 0, len(text)
    while i < end:
        if text[i] in _SPACE:
            i += 1
            continue
        start = i
        while i < end and text[i] != "=" and text[i] not in _SPACE:
            i += 1
        keyword = text[start:i]
        while i < end and text[i] in _SPACE:
            i += 1
        if i == end or text[i] != "=":
            raise ConninfoError(f'missing "=" after "{keyword}" in connection info string')
        i += 1
        while i < end and text[i] in _SPACE:
            i += 1
        value: list[str] = []
        if i < end and text[i] == "'":
            i += 1
            while True:
                if i == end:
                    raise ConninfoError("unterminated quoted string in connection info string")
                char = text[i]
                if char == "\\":
                    i += 1
                    if i < end:
                        value.append(text[i])
                        i += 1
                    continue
                i += 1
                if char == "'":
                    break
                value.append(char)
        else:
            while i < end:
                char = text[i]
                i += 1
                if char in _SPACE:
                    break
                if char == "\\":
                    if i < end:
                        value.append(text[i])
                        i += 1
                else:
                    value.append(char)
        _store(values, keyword, "".join(value))


def _parse_uri(uri: str, values: dict[str, str]) -> None:
    """``postgresql://[user[:password]@][host[:port][,...]][/dbname][?key=value&...]``, each
    part percent-decoded; IPv6 hosts in brackets."""
    prefix = next(p for p in _URI_PREFIXES if uri.startswith(p))
    text, i = uri, len(prefix)
    at = _scan(text, i, "@/")
    if at < len(text) and text[at] == "@":
        colon = _scan(text, i, ":@")
        if colon > i:
            _store(values, "user", _decode(text[i:colon]))
        if text[colon] == ":" and at > colon + 1:
            _store(values, "password", _decode(text[colon + 1 : at]))
        i = at + 1
    hosts: list[str] = []
    ports: list[str] = []
    while True:
        if i < len(text) and text[i] == "[":
            close = _scan(text, i + 1, "]")
            if close == len(text):
                raise ConninfoError(
                    'end of string reached when looking for matching "]" in IPv6 host address '
                    f'in URI: "{uri}"'
                )
            if close == i + 1:
                raise ConninfoError(f'IPv6 host address may not be empty in URI: "{uri}"')
            hosts.append(text[i + 1 : close])
            i = close + 1
            if i < len(text) and text[i] not in ":/?,":
                raise ConninfoError(
                    f'unexpected character "{text[i]}" at position {i + 1} in URI '
                    f'(expected ":" or "/"): "{uri}"'
                )
        else:
            stop = _scan(text, i, ":/?,")
            hosts.append(text[i:stop])
            i = stop
        port = ""
        if i < len(text) and text[i] == ":":
            stop = _scan(text, i + 1, "/?,")
            port, i = text[i + 1 : stop], stop
        ports.append(port)
        if i == len(text) or text[i] != ",":
            break
        i += 1
    for keyword, parts in (("host", hosts), ("port", ports)):
        joined = ",".join(parts)
        if joined:
            _store(values, keyword, _decode(joined))
    if i < len(text) and text[i] == "/":
        stop = _scan(text, i + 1, "?")
        if stop > i + 1:
            _store(values, "dbname", _decode(text[i + 1 : stop]))
        i = stop
    if i < len(text):
        _parse_query(text[i + 1 :], values)


def _parse_query(query: str, values: dict[str, str]) -> None:
    """``key=value&...`` after the ``?`` (a trailing ``&`` ends the list); ``ssl=true`` means
    ``sslmode=require``."""
    params = query.split("&")
    if params[-1] == "":
        params.pop()
    for param in params:
        keyword, sep, value = param.partition("=")
        if not sep:
            raise ConninfoError(
                f'missing key/value separator "=" in URI query parameter: "{keyword}"'
            )
        if "=" in value:
            raise ConninfoError(
                f'extra key/value separator "=" in URI query parameter: "{keyword}"'
            )
        keyword, value = _decode(keyword), _decode(value)
        if keyword == "ssl" and value == "true":
            keyword, value = "sslmode", "require"
        if keyword not in _ORDER and keyword != "requiressl":
            raise ConninfoError(f'invalid URI query parameter: "{keyword}"')
        _store(values, keyword, value)


def _scan(text: str, start: int, stops: str) -> int:
    """Index of the first character of ``stops`` at or after ``start`` (or the end)."""
    i = start
    while i < len(text) and text[i] not in stops:
        i += 1
    return i


def _decode(part: str) -> str:
    """Percent-decoding as libpq does it: ``%XX`` pairs, no ``%00``, blanks around the value
    dropped and none inside it."""
    text = part.lstrip(" ")
    out = bytearray()
    i = 0
    while i < len(text) and text[i] != " ":
        if text[i] != "%":
            out += text[i].encode()
            i += 1
            continue
        digits = text[i + 1 : i + 3]
        if len(digits) < 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ConninfoError(f'invalid percent-encoded token: "{part}"')
        if digits == "00":
            raise ConninfoError(f'forbidden value %00 in percent-encoded value: "{part}"')
        out.append(int(digits, 16))
        i += 3
    if text[i:].strip(" "):
        raise ConninfoError(
            f'unexpected spaces found in "{part}", use percent-encoded spaces (%20) instead'
        )
    return out.decode(errors="surrogateescape")  # libpq reads on; parse_conninfo refuses it
