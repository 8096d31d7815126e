"""Domain exceptions. Each carries a short title and a one-line message for operators."""

from __future__ import annotations


class ConsoleError(Exception):
    """Base for every error the console reports to an operator.

    ``exit_code`` follows the CLI convention: 1 = the operation failed, 2 = bad usage or input.
    """

    title = "Error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ConsoleError):
    """The operator asked for something malformed; nothing was attempted."""

    title = "Invalid input"
    exit_code = 2


class ConfigError(InvalidInput):
    """The configuration file or an override is wrong."""

    title = "Configuration error"


class ReadOnlyMode(InvalidInput):
    """A mutation was requested while the console runs read-only."""

    title = "Read-only mode"


class NotFound(InvalidInput):
    """The named object does not exist."""

    title = "Not found"


class InvalidState(ConsoleError):
    """The tenant is not in a state that allows the requested operation."""

    title = "Not allowed in this state"


class TenantBusy(ConsoleError):
    """Another operation holds the tenant's advisory lock."""

    title = "Tenant busy"


class ConnectionFailed(ConsoleError):
    """The cluster could not be reached."""

    title = "Connection failed"


class OperationFailed(ConsoleError):
    """A step of an operation failed; the message names the step and the cause."""

    title = "Operation failed"


class PgBouncerUnavailable(ConnectionFailed):
    """PgBouncer's admin console could not be reached or stopped answering."""

    title = "PgBouncer unavailable"


class NotInitialised(InvalidInput):
    """The cluster has no control schema: ``goconsole init`` never ran on it."""

    title = "Not initialised"


class NotConfigured(InvalidInput):
    """A feature needs configuration that is missing."""

    title = "Not configured"
