"""A real uvicorn in a subprocess, for the server tests (see conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

#: Modules the server tests serve (``tests/apps/<module>.py``).
APPS_DIR = Path(__file__).parent / "apps"

_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def _die_with_parent() -> None:
    """In the child: get SIGKILL when pytest goes, even if pytest is killed.

    Linux only (``PR_SET_PDEATHSIG``); elsewhere a killed test run may leave
    its servers running.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class UvicornProcess:
    """``python -m uvicorn <target>`` on 127.0.0.1, on a port the OS picks.

    Output goes to a log file (:attr:`log`). The port is read from uvicorn's
    "running on" line (``--port 0`` binds a free port, so there is no race).
    """

    def __init__(
        self,
        target: str,
        log_path: Path,
        *,
        app_dir: Path = APPS_DIR,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.log_path = log_path
        self.port: int | None = None
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--app-dir",
            str(app_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--lifespan",
            "on",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
            *args,
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        assert self.port is not None, "the server has not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss(self) -> int:
        """The server's resident memory, in bytes."""
        return psutil.Process(self.pid).memory_info().rss

    def wait_ready(self, timeout: float = 30.0) -> UvicornProcess:
        """Wait until the server answers on its port (lifespan startup is done)."""
        deadline = time.monotonic() + timeout
        while self.port is None:
            match = _RUNNING.search(self.log)
            if match:
                self.port = int(match.group(1))
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start in {timeout} s:\n{self.log}")
            time.sleep(0.02)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.process.wait(timeout)

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server, wait for it to exit (kill it if it does not)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
