"""What an operator can do about an error or a finding, as data. The core never names a front
end's flags, commands or keys: it attaches a hint, and each front end words it its own way (the
CLI as a command or a flag, the UI as a key or an action). :class:`Field` names the input a
message is about, by the plain word the message starts with."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Field(enum.StrEnum):
    """An input the operator gives; the value is the word a core message uses for it."""

    CONCURRENCY = "concurrency"
    TIMEOUT = "timeout"
    TARGET = "target"
    KEEP_REPLACED = "keep"


@dataclass(frozen=True)
class Force:
    """Retry terminating the lock holders, or with a longer timeout."""


@dataclass(frozen=True)
class ListTenants:
    """The registered tenants are listed elsewhere."""


@dataclass(frozen=True)
class ListMigrationRuns:
    """The recent migration runs are listed elsewhere."""


@dataclass(frozen=True)
class RunInit:
    """Initialise the cluster (control schema, application role, template) first."""


@dataclass(frozen=True)
class RebuildInterface:
    """Migrate the control tree (which recreates the registry interface), then initialise."""


@dataclass(frozen=True)
class SyncPools:
    """Synchronise PgBouncer's tenant aliases with the registry."""


@dataclass(frozen=True)
class CheckConnection:
    """Check the cluster's DSN and that the server is running."""


@dataclass(frozen=True)
class LowerConcurrency:
    """Use a concurrency from 1 to ``most``, or raise the pool size."""

    most: int


@dataclass(frozen=True)
class KeysFromFile:
    """Tenant keys can also come from a file, one a line."""


@dataclass(frozen=True)
class ListReplaced:
    """See the schemas a restore replaced (kept for a rollback)."""


Hint = (
    Force
    | ListTenants
    | ListMigrationRuns
    | RunInit
    | RebuildInterface
    | SyncPools
    | CheckConnection
    | LowerConcurrency
    | KeysFromFile
    | ListReplaced
)
