"""``flask aiorun --server granian`` and ``app.run(server="granian")``: real
granian processes, real clients (httpx, websockets)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from _uvicorn import APPS_DIR, UvicornProcess
from aioflask import Flask

pytest.importorskip("granian", reason="granian is not installed (pip install 'aioflask[granian]')")

FLASK = [sys.executable, "-m", "flask"]
_LISTENING = re.compile(r"Listening at: (https?)://127\.0\.0\.1:(\d+)")


class GranianProcess(UvicornProcess):
    """A command serving with granian, in its own process group (granian's
    main process and its workers)."""

    def __init__(self, argv: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.port = None
        self.scheme = "http"
        environ = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "FLASK_DEBUG")}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**environ, "PYTHONUNBUFFERED": "1", **env},
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> GranianProcess:
        """Wait for a first answer: the worker is up and lifespan startup is done."""
        deadline = time.monotonic() + timeout
        while True:
            match = _LISTENING.search(self.log)
            if match:
                self.scheme, self.port = match.group(1), int(match.group(2))
                try:
                    httpx.get(self.url + "/", verify=False, timeout=5)
                    return self
                except httpx.TransportError:
                    pass
            if self.process.poll() is not None:
                raise RuntimeError(f"granian exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"granian did not start in {timeout} s:\n{self.log}")
            time.sleep(0.05)

    def kill(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "hooks.log"
    path.touch()
    return path


@pytest.fixture
def granian(tmp_path: Path, log_file: Path) -> Iterator[Callable[..., GranianProcess]]:
    started: list[GranianProcess] = []

    def start(
        *args: str,
        command: list[str] | None = None,
        cwd: Path = APPS_DIR,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> GranianProcess:
        """``flask --app granian_app aiorun --server granian --port 0 *args``."""
        argv = command or [*FLASK, "--app", "granian_app", "aiorun", "--server", "granian"]
        if command is None:
            argv += ["--port", "0", *args]
        process = GranianProcess(
            argv,
            tmp_path / f"granian-{len(started)}.log",
            cwd,
            {"GRANIAN_LOG": str(log_file), **(env or {})},
        )
        started.append(process)
        return process.wait_ready() if wait else process

    yield start
    for process in started:
        process.kill()


def test_http_websocket_and_lifespan(granian, log_file: Path) -> None:  # type: ignore[no-untyped-def]
    server = granian()
    assert "Starting granian" in server.log
    body = httpx.get(server.url + "/").json()
    # Served by a worker process that ran the startup hook before any request.
    assert body["pid"] != server.pid
    assert body["log"] == [f"startup {body['pid']}"]
    assert body["server"] == "3.0"
    assert body["debug"] is False
    payload = bytes(range(256)) * 1024
    response = httpx.post(server.url + "/echo", content=payload)
    assert response.json() == {"length": len(payload), "sum": sum(payload)}
    with connect(server.url.replace("http", "ws", 1) + "/ws") as ws:
        for message in ("hello", b"\x00binary", "x" * 100_000):
            ws.send(message)
            assert ws.recv() == message
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, server.log
    pid = body["pid"]
    assert log_file.read_text().splitlines() == [f"startup {pid}", f"shutdown {pid}"]


def test_a_failing_startup_hook_stops_the_server(granian, log_file: Path) -> None:  # type: ignore[no-untyped-def]
    server = granian(env={"GRANIAN_FAIL_STARTUP": "1"}, wait=False)
    assert server.process.wait(60) != 0, server.log
    assert "boom in before_serving" in server.log
    assert "shutdown" not in log_file.read_text()


def test_workers_serve_from_several_processes(granian) -> None:  # type: ignore[no-untyped-def]
    server = granian("--workers", "2")
    pids = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2:
        with httpx.Client() as client:  # new connections spread over the workers
            pids.add(client.get(server.url + "/").json()["pid"])
        assert time.monotonic() < deadline, f"only saw {pids}\n{server.log}"
    assert server.pid not in pids


def test_https_with_an_adhoc_certificate(granian) -> None:  # type: ignore[no-untyped-def]
    server = granian("--cert", "adhoc")
    assert server.scheme == "https"
    assert httpx.get(server.url + "/", verify=False).json()["scheme"] == "https"


def test_debug_serves_the_debugger_and_reloads(granian, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    project.mkdir()
    source = (APPS_DIR / "granian_app.py").read_text()
    (project / "granian_app.py").write_text(source)
    # --debug: the reloader and the debugger, as with uvicorn.
    server = granian(
        command=[
            *(*FLASK, "--app", "granian_app", "--debug", "aiorun"),
            *("--server", "granian", "--port", "0"),
        ],
        cwd=project,
    )
    assert re.search(r"Debugger PIN: [\d-]+", server.log), server.log
    assert httpx.get(server.url + "/").json()["debug"] is True
    response = httpx.get(server.url + "/boom")
    assert response.status_code == 500
    assert "Werkzeug Debugger" in response.text
    assert "boom for the debugger" in response.text
    assert httpx.get(server.url + "/").json()["version"] == "first"
    time.sleep(0.5)
    (project / "granian_app.py").write_text(source.replace('"first"', '"second"'))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(server.url + "/").json()["version"] == "second":
                break
        except httpx.TransportError:
            pass  # between the old worker and the new one
        assert time.monotonic() < deadline, server.log
        time.sleep(0.2)
    assert "Changes detected" in server.log
    # The new worker serves the debugger too.
    assert "Werkzeug Debugger" in httpx.get(server.url + "/boom").text


def test_app_run_serves_with_granian(granian, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:  # app.run() takes 0 for "the default port"
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "run_app.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(APPS_DIR)!r})\n"
        "from granian_app import app\n"
        "if __name__ == '__main__':\n"
        f"    app.run(port={port}, debug=True, use_reloader=False, load_dotenv=False,"
        " server='granian')\n"
    )
    server = granian(command=[sys.executable, str(script)], cwd=tmp_path)
    assert "Starting granian" in server.log
    assert httpx.get(server.url + "/").json()["debug"] is True
    assert "Werkzeug Debugger" in httpx.get(server.url + "/boom").text


def test_app_run_cannot_reload_with_granian() -> None:
    with pytest.raises(ValueError, match=r"granian cannot reload an app started by app\.run\(\)"):
        Flask("script").run(debug=True, load_dotenv=False, server="granian")


def test_unknown_servers_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown server 'hypercorn': use one of uvicorn, granian"):
        Flask("nope").run(server="hypercorn", load_dotenv=False)
    result = subprocess.run(
        [*FLASK, "--app", "granian_app", "aiorun", "--server", "nope"],
        cwd=APPS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'nope' is not one of 'uvicorn', 'granian'" in result.stderr


def test_granian_sends_files_from_their_path(granian, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(1024 * 1024)
    (tmp_path / "data.bin").write_bytes(data)
    server = granian(
        command=[*FLASK, "--app", "files_app", "aiorun", "--server", "granian", "--port", "0"],
        env={"FILES_DIR": str(tmp_path)},
    )
    with httpx.Client(base_url=server.url) as client:
        for url in ("/file/data.bin", "/static/data.bin"):
            response = client.get(url)
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(data))
            assert response.content == data
        # granian read the files from their path: the app read nothing of them.
        assert client.get("/reads").json()["bytes"] == 0
        # A range, a conditional request and HEAD are answered as before.
        response = client.get("/file/data.bin", headers={"Range": "bytes=100000-100099"})
        assert response.status_code == 206
        assert response.content == data[100_000:100_100]
        assert client.get("/reads").json()["bytes"] > 0  # streamed by the app
        etag = client.get("/static/data.bin").headers["etag"]
        response = client.get("/static/data.bin", headers={"If-None-Match": etag})
        assert response.status_code == 304
        assert response.content == b""
        response = client.head("/file/data.bin")
        assert response.headers["content-length"] == str(len(data))
        assert response.content == b""


def test_granian_rsgi_interface_is_refused_with_the_fix(granian) -> None:  # type: ignore[no-untyped-def]
    # granian's default interface is RSGI: the worker fails at once, saying what to run.
    server = granian(
        command=[sys.executable, "-m", "granian", "--port", "0", "granian_app:app"], wait=False
    )
    assert server.process.wait(60) != 0, server.log
    assert "granian serves RSGI by default" in server.log
    assert "'granian --interface asgi module:app'" in server.log
    assert "aiorun --server granian" in server.log


async def test_rsgi_calls_are_refused() -> None:
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match="--interface asgi"):
        app.__rsgi_init__(None)
    with pytest.raises(RuntimeError, match="--interface asgi"):
        await app.__rsgi__(None, None)


def test_lifespan_state_reaches_requests(granian, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "state.log"
    command = [*FLASK, "--app", "state_app", "aiorun", "--server", "granian", "--port", "0"]
    server = granian(command=command, env={"STATE_LOG": str(log)})  # its first GET is one request
    body = httpx.get(server.url + "/").json()
    assert body["open"] is True
    assert body["started"] != server.pid  # set in the worker's lifespan
    assert body["names"] == ["mine", "pool", "started"]
    with connect(server.url.replace("http", "ws", 1) + "/ws") as ws:
        assert ws.recv() == "True"
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, server.log
    assert log.read_text().splitlines() == ["startup", "shutdown used=2"]
