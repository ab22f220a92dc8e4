"""A throwaway PostgreSQL cluster for the database tests (see test_databases.py).

Debian's ``postgresql`` package (``initdb`` and ``postgres`` under
``/usr/lib/postgresql/<version>/bin``): a cluster in a temporary directory,
on a free port of 127.0.0.1, trusting local connections, without fsync. As
root, it runs as the ``postgres`` user (``initdb`` refuses root). The server
is a child process that gets SIGKILL when its parent goes, even if the test
run is killed (Linux), so no server outlives the tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Enough for a 200-connection pool and the test's own connections.
MAX_CONNECTIONS = 500

# Looked up here: the child, once the postgres user, may not read Python's
# own files to import ctypes.
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the server's process: get SIGKILL when the test run goes (Linux)."""
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``postgres``, or None if not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # type: ignore[no-any-return]


class PostgresCluster:
    """``initdb`` + ``postgres`` in a temporary directory; :meth:`stop` removes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="aioflask-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._user = "postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=120, **self._as_user()
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")

    def _as_user(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._user, "extra_groups": []}

    def start(self) -> PostgresCluster:
        """Create and start the cluster; if that fails, stop it and remove its directory."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
            "max_connections": str(MAX_CONNECTIONS),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "lc_messages": "C",  # _wait_ready reads the log
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with (self.dir / "postgres.log").open("wb") as log:
            # The signal is set after the switch to the postgres user (the
            # subprocess module switches first; a switch would clear it).
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                **self._as_user(),  # type: ignore[arg-type]
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        log = self.dir / "postgres.log"
        while self.process.poll() is None:
            # An open port is not enough: until recovery ends, connections are
            # refused with "the database system is starting up".
            if b"ready to accept connections" in log.read_bytes():
                address = ("127.0.0.1", self.port)
                with contextlib.suppress(OSError), socket.create_connection(address):
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        text = log.read_text(errors="replace")
        raise RuntimeError(f"postgres did not start (exit {self.process.poll()}):\n{text}")

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove the cluster's directory."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    self.process.wait(30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL: ``postgresql+asyncpg://postgres@127.0.0.1:<port>/<database>``."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq / asyncpg DSN."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
