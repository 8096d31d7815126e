"""A local PgBouncer process on a loopback port, in front of a local cluster.

Used by the test fixtures, the pool benchmark and ``goconsole demo``. Configured like the seed
(transaction pooling, default_pool_size 20, max_client_conn 1000, reserve pool 5 after 5 s,
max_db_connections 50) with trust authentication for the listed users, and ``%include`` of the
tenant alias file goconsole manages. PgBouncer refuses to run as root, so as root it runs as the
same unprivileged OS user as the local PostgreSQL servers.
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from console.core.errors import OperationFailed
from console.core.pools.admin import admin_console_answers
from console.core.pools.include_file import HEADER
from console.devenv.postgres import free_port, server_os_user

ADMIN_USER = "goconsole_admin"
SEARCH_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
SEED_SETTINGS = {
    "pool_mode": "transaction",
    "default_pool_size": "20",
    "max_client_conn": "1000",
    "reserve_pool_size": "5",
    "reserve_pool_timeout": "5",
    "max_db_connections": "50",
}
_FILE_LIMIT = 4096


def pgbouncer_binary() -> Path | None:
    """The pgbouncer program on this machine, or None."""
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    for candidate in SEARCH_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass
class LocalPgBouncer:
    """One PgBouncer with its config, auth file, log and include file in ``work_dir``."""

    work_dir: Path
    backend_port: int
    users: tuple[str, ...] = ("postgres",)
    port: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    include_file: Path | None = None

    def __post_init__(self) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise OperationFailed("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.binary = binary
        self.port = self.port or free_port()
        self.include_file = self.include_file or self.work_dir / "tenants.ini"
        self.os_user = server_os_user()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        """The generated pgbouncer.ini."""
        return self.work_dir / "pgbouncer.ini"

    @property
    def log_file(self) -> Path:
        """PgBouncer's log."""
        return self.work_dir / "pgbouncer.log"

    @property
    def stderr_file(self) -> Path:
        """Where PgBouncer's stderr goes: it runs with ``-q`` and logs to :attr:`log_file`, so
        this holds only what it prints before its log is open (a config error at start)."""
        return self.work_dir / "pgbouncer.stderr"

    @property
    def admin_dsn(self) -> str:
        """DSN of the admin console."""
        return f"host=127.0.0.1 port={self.port} dbname=pgbouncer user={ADMIN_USER}"

    def dsn(self, alias: str, user: str) -> str:
        """A libpq URI for a client of ``alias``."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{alias}"

    def write_config(self) -> None:
        """pgbouncer.ini, the auth file and (when missing) an empty include file."""
        assert self.include_file is not None
        self.work_dir.mkdir(parents=True, exist_ok=True)
        options = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.work_dir / "users.txt"),
            "admin_users": ADMIN_USER,
            "logfile": str(self.log_file),
            "ignore_startup_parameters": "extra_float_digits",
            **SEED_SETTINGS,
            **self.settings,
        }
        lines = ["[databases]", "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in options.items()]
        lines += ["", f"%include {self.include_file}", ""]
        self.config_file.write_text("\n".join(lines))
        users = sorted({*self.users, ADMIN_USER})
        (self.work_dir / "users.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        if not self.include_file.exists():
            self.include_file.write_text(HEADER.format(path=self.include_file))
        if self.os_user is not None:
            for path in (self.work_dir, self.config_file, self.log_file.parent):
                shutil.chown(path, self.os_user, self.os_user)
            if self.log_file.exists():
                shutil.chown(self.log_file, self.os_user, self.os_user)

    def start(self, timeout: float = 15.0) -> None:
        """Start PgBouncer in the foreground as a child and wait until the admin console
        answers."""
        if self.running():
            return
        self.write_config()
        # Never a pipe: nobody reads it, and PgBouncer blocks in write(2) once it is full.
        with self.stderr_file.open("wb") as stderr:
            self._process = subprocess.Popen(
                [str(self.binary), "-q", str(self.config_file)],
                user=self.os_user,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd="/",
                preexec_fn=_raise_file_limit,  # only sets a limit; no threads are running
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise OperationFailed(f"pgbouncer exited at start: {self._start_error()}")
            if admin_console_answers(self.admin_dsn):
                return
            time.sleep(0.05)
        self.stop()
        raise OperationFailed(f"pgbouncer did not answer on port {self.port} in {timeout:g}s")

    def _start_error(self) -> str:
        """The end of what PgBouncer wrote before it exited (stderr, else its log)."""
        for path in (self.stderr_file, self.log_file):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    return text[-400:]
        return "no output"

    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop PgBouncer (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _raise_file_limit() -> None:
    """PgBouncer needs a descriptor per client and server connection (max_client_conn 1000)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _FILE_LIMIT if hard == resource.RLIM_INFINITY else min(_FILE_LIMIT, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
