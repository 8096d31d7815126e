"""Why PgBouncer closed server connections, read from the end of its log file.

PgBouncer 1.18 lists no failed connection attempt in ``SHOW SERVERS`` (a server connection that
could not connect is gone at once); its log says it, one line per attempt::

    ... LOG S-0x5649fba7fe40: tenant_x/app@127.0.0.1:36937 closing because: connect failed (age=0s)
"""

from __future__ import annotations

import re
from pathlib import Path

TAIL_BYTES = 256 * 1024
_SERVER_CLOSE = re.compile(
    r" S-0x[0-9a-f]+: (?P<db>[^/\s]+)/\S+@(?P<addr>\S+) closing because: (?P<why>.+?)"
    r"(?: \(age=[^)]*\))?\s*$"
)
# Closes PgBouncer does on purpose: they say nothing about a pool that cannot get a server.
ROUTINE = (
    "server idle timeout",
    "server lifetime over",
    "client close request",
    "database configuration changed",
    "database removed",
    "RECONNECT",
    "server_reset_query",
    "unclean server",
    "client disconnect",
)


def server_failures(path: Path, tail_bytes: int = TAIL_BYTES) -> dict[str, str]:
    """The last non-routine reason each database's server connection was closed, from the
    last ``tail_bytes`` of the log (``{}`` when the file cannot be read)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - tail_bytes))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _SERVER_CLOSE.search(line)
        if match is None:
            continue
        why = match["why"]
        if any(why.startswith(routine) for routine in ROUTINE):
            found.pop(match["db"], None)  # a later routine close: the server worked
        else:
            found[match["db"]] = f"server {why} ({match['addr']})"
    return found
