"""Who is operating: OS user, host and SSH client address, recorded with every audit entry."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The operator behind a mutation."""

    user: str
    host: str
    address: str

    @classmethod
    def current(cls) -> Actor:
        """The OS user, this host, and the SSH client address (``local`` without SSH)."""
        ssh = os.environ.get("SSH_CONNECTION", "").split()
        return cls(getpass.getuser(), socket.gethostname(), ssh[0] if ssh else "local")

    def label(self) -> str:
        """``user@host`` plus the SSH address when there is one."""
        where = "" if self.address == "local" else f" via {self.address}"
        return f"{self.user}@{self.host}{where}"
