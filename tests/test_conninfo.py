"""The driver-free conninfo parser reads every connection string as libpq does (psycopg's
``conninfo_to_dict`` calls libpq, so it is the reference), and writes what psycopg writes."""

from __future__ import annotations

import random

import psycopg
import psycopg.conninfo
import pytest
from psycopg import pq

from console.core.conninfo import KEYWORDS, ConninfoError, make_conninfo, parse_conninfo

CASES = [
    "",
    "host=db.example port=6543 dbname=shop user=alice",
    "port=1 host=x user=y",
    "host = x  port= 2",
    "host=a\\ b",
    "host='a b\\'c'",
    "host='a'port=1",
    "user=  'a b'  dbname=c\td",
    "a=b=c",
    "host=",
    "requiressl=1",
    "requiressl=0",
    "dbname=postgresql://x",
    "host='unterminated",
    "host='\\",
    "foo=bar",
    "=x",
    "host",
    "postgresql://",
    "postgres://x",
    "postgresql:/x",
    "postgresql://a:b@h:1,h2:2/db?sslmode=require&application_name=x%20y",
    "postgresql://[::1]:5/d",
    "postgresql://[::1],[::2]:5/d",
    "postgresql://a,b/db",
    "postgresql://a:1,b/db",
    "postgresql://,/",
    "postgresql:///db",
    "postgres://u@/db?host=/tmp",
    "postgresql://h:/d",
    "postgresql://u:@h",
    "postgresql://:p@h",
    "postgresql://u:p:q@h/d",
    "postgresql://u@h@x/d",
    "postgresql://u?x@h",
    "postgresql://%41:%42@%43:%35/%44?application_name=%45",
    "postgresql://h/%E2%82%AC",
    "postgresql:// h /db",
    "postgresql://h/db?ssl=true",
    "postgresql://h/db?ssl=false",
    "postgresql://h/db?requiressl=0",
    "postgresql://h/db?user=x&host=y",
    "postgresql://h/db?a=1&",
    "postgresql://h/db?",
    "postgresql://h?dbname=x",
    "postgresql://h/db?foo=1",
    "postgresql://h/db?a",
    "postgresql://h/db?a=1&&b=2",
    "postgresql://h/db?sslmode=a=b",
    "postgresql://h/%zz",
    "postgresql://h/d%00",
    "postgresql://h/d%2",
    "postgresql://alice:pa ss@h/d",
    "postgresql://[::1",
    "postgresql://[]/",
    "postgresql://[::1]x/",
]


def libpq(conninfo: str) -> tuple[str, object]:
    """What libpq (through psycopg) makes of ``conninfo``: its keywords, or its message."""
    try:
        return "ok", list(psycopg.conninfo.conninfo_to_dict(conninfo).items())
    except psycopg.ProgrammingError as exc:
        return "error", str(exc).strip()


def ours(conninfo: str) -> tuple[str, object]:
    try:
        return "ok", list(parse_conninfo(conninfo).items())
    except ConninfoError as exc:
        return "error", str(exc)


def test_the_keywords_are_libpqs() -> None:
    assert tuple(o.keyword.decode() for o in pq.Conninfo.get_defaults()) == KEYWORDS


@pytest.mark.parametrize("conninfo", CASES)
def test_a_connection_string_parses_as_libpq_parses_it(conninfo: str) -> None:
    assert ours(conninfo) == libpq(conninfo)


def test_random_connection_strings_parse_as_libpq_parses_them() -> None:
    rnd = random.Random(12)
    alphabet = "ab:/@?&=%,[]' \\\t0F1hx"
    compared = 0
    for _ in range(3000):
        start = rnd.choice(["postgresql://", "", "host=", "user='", "postgres://u:p@"])
        text = start + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        try:
            expected = libpq(text)
        except UnicodeDecodeError:  # percent-decoded bytes that are not UTF-8: psycopg fails
            continue
        assert ours(text) == expected, text
        compared += 1
    assert compared > 2500


@pytest.mark.parametrize(
    "params",
    [
        {"host": "a b", "user": "o'k", "dbname": "", "port": "5", "password": "x\\y"},
        {"application_name": "tab\there", "sslmode": "require"},
        {},
    ],
)
def test_written_as_psycopg_writes_and_read_back(params: dict[str, str]) -> None:
    written = make_conninfo(params)
    assert written == psycopg.conninfo.make_conninfo(**params)
    assert parse_conninfo(written) == psycopg.conninfo.conninfo_to_dict(written)
    assert sorted(parse_conninfo(written).items()) == sorted(params.items())


def test_an_unknown_keyword_is_not_written() -> None:
    with pytest.raises(ConninfoError, match='invalid connection option "nope"'):
        make_conninfo({"nope": "1"})


def test_percent_encoded_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(ConninfoError, match="dbname: percent-encoded bytes that are not UTF-8"):
        parse_conninfo("postgresql://h/%ff")
