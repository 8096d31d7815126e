"""A cancellation token: the front end creates one, hands it to a long operation, and cancels
it; the operation checks it between units of work and stops handing out new ones."""

from __future__ import annotations


class Cancellation:
    """Set once by :meth:`cancel`; never reset (a new operation takes a new token)."""

    def __init__(self) -> None:
        self._cancelled = False

    def cancel(self) -> None:
        """Ask the operation holding this token to stop starting new work."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled
