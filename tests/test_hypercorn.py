"""Hypercorn serving the app for real: the commands docs/serving.rst gives."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from _uvicorn import APPS_DIR

pytest.importorskip("hypercorn", reason="hypercorn is not installed")

_RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def hypercorn(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start ``hypercorn <target>`` on a free port; return its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        log_path = tmp_path / f"hypercorn-{len(processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hypercorn", "--bind", "127.0.0.1:0", target],
                cwd=APPS_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its worker process is stopped with it
            )
        processes.append(process)
        deadline = time.monotonic() + 60
        while not (match := _RUNNING.search(log_path.read_text())):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        return f"127.0.0.1:{match.group(1)}"

    yield start
    for process in processes:
        # The whole group: killing the parent alone leaves its worker running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def echo(address: str) -> str:
    with connect(f"ws://{address}/ws") as ws:
        ws.send("hello")
        return str(ws.recv())


@pytest.mark.parametrize("target", ["hypercorn_app:app.asgi_app", "asgi:hypercorn_app:app"])
def test_hypercorn_serves_the_app_as_asgi(hypercorn, target: str) -> None:  # type: ignore[no-untyped-def]
    # On every Python: the ASGI callable itself, or the app with Hypercorn's "asgi:" mode.
    address = hypercorn(target)
    assert httpx.get(f"http://{address}/").json() == {"started": True}
    assert echo(address) == "hello"


def test_hypercorn_serves_the_app_as_asgi_from_python_3_12(hypercorn) -> None:  # type: ignore[no-untyped-def]
    address = hypercorn("hypercorn_app:app")
    if sys.version_info >= (3, 12):
        assert httpx.get(f"http://{address}/").json() == {"started": True}
        assert echo(address) == "hello"
    else:
        # Before 3.12 Hypercorn's inspect.iscoroutinefunction does not see
        # asgiref's mark: it serves the app as WSGI, as docs/serving.rst says.
        assert httpx.get(f"http://{address}/").json() == {"started": False}
        with pytest.raises(InvalidStatus, match="403"):
            echo(address)
