"""A throwaway PostgreSQL cluster for the database tests (see conftest.py).

Debian's ``postgresql`` package (``initdb`` and ``pg_ctl`` under
``/usr/lib/postgresql/<version>/bin``): a cluster in a temporary directory,
on a free port of 127.0.0.1, trusting local connections, without fsync. As
root, it runs as the ``postgres`` user (``initdb`` refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: Enough for a 200-connection pool and the test's own connections.
MAX_CONNECTIONS = 500


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``, or None if not installed."""
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
    """``initdb`` + ``pg_ctl start`` in a temporary directory; :meth:`stop` removes it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="aioflask-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> PostgresCluster:
        """Create and start the cluster; if that fails, stop it and remove its directory."""
        try:
            self._start()
        except BaseException:
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                self.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
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
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
            f" -c max_connections={MAX_CONNECTIONS} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL: ``postgresql+asyncpg://postgres@127.0.0.1:<port>/<database>``."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq / asyncpg DSN."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
