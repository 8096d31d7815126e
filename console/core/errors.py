"""Domain exceptions. Each carries a short title and a one-line message for operators, in
words no front end owns; a :mod:`~console.core.hints` hint says what the operator can do."""

from __future__ import annotations

from console.core.hints import Field, Hint


class ConsoleError(Exception):
    """Base for every error the console reports to an operator.

    ``exit_code`` follows the CLI convention: 1 = the operation failed, 2 = bad usage or input.
    ``hint`` is what the operator can do about it; ``field`` the input the message is about
    (the message then starts with that field's word), for a front end to name its own way.
    """

    title = "Error"
    exit_code = 1

    def __init__(
        self, message: str, *, hint: Hint | None = None, field: Field | None = None
    ) -> None:
        super().__init__(message)
        if field is not None and not message.startswith(field.value):
            raise ValueError(f"a message about {field.value!r} must start with it: {message!r}")
        self.message = message
        self.hint = hint
        self.field = field

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

    @classmethod
    def refusing(cls, operation: str, why: str = "") -> ReadOnlyMode:
        """The refusal of ``operation`` (``why`` appended): the one wording every front end
        and fleet operation shows."""
        return cls(f"{operation} refused: the console is in read-only mode{why}")


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


class JobBusy(ConsoleError):
    """A scheduled job is already running (here or in another console)."""

    title = "Job busy"
