"""``await app.serve()`` / ``app.run_task()``: uvicorn in the caller's event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from _uvicorn import APPS_DIR
from aioflask import Flask, request, websocket
from aioflask.serving import _adhoc_certificate
from aioflask.testing import LifespanError


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def app(log: list[str]) -> Flask:
    app = Flask(__name__)

    @app.while_serving
    async def around():
        app.lifespan_state.greeting = "hello"
        log.append("startup")
        yield
        log.append("shutdown")

    @app.get("/")
    async def index():
        await asyncio.sleep(0)
        return {"greeting": request.state.greeting, "scheme": request.scheme}

    @app.websocket("/ws")
    async def ws():
        await websocket.accept()
        await websocket.send(await websocket.receive())

    return app


def other_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_serve_on_a_free_port_until_cancelled(app: Flask, log: list[str]) -> None:
    before = other_tasks()
    ready = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        app.serve(port=0, ready=ready, shutdown_trigger=asyncio.Event().wait)
    )
    url = await ready
    assert url.startswith("http://127.0.0.1:")
    assert log == ["startup"]
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/")).json() == {"greeting": "hello", "scheme": "http"}
    async with connect(url.replace("http", "ws", 1) + "/ws") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert log == ["startup", "shutdown"]
    assert other_tasks() == before  # nothing left running
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


async def test_a_shutdown_trigger_stops_the_server(app: Flask, log: list[str]) -> None:
    stop = asyncio.Event()
    ready = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(app.serve("127.0.0.1", 0, ready=ready, shutdown_trigger=stop.wait))
    url = await ready
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/")).status_code == 200
    stop.set()
    assert await server is None
    assert log == ["startup", "shutdown"]


async def test_an_error_in_the_trigger_stops_the_server_and_is_raised(
    app: Flask, log: list[str]
) -> None:
    async def trigger() -> None:
        await asyncio.sleep(0.05)
        raise ValueError("the supervisor went away")

    with pytest.raises(ValueError, match="supervisor"):
        await app.serve(port=0, shutdown_trigger=trigger)
    assert log == ["startup", "shutdown"]


async def test_a_failed_startup_raises(app: Flask, log: list[str]) -> None:
    @app.before_serving
    def broken():
        raise RuntimeError("no database")

    ready = asyncio.get_running_loop().create_future()
    with pytest.raises(LifespanError, match="RuntimeError: no database"):
        await app.serve(port=0, ready=ready, shutdown_trigger=asyncio.Event().wait)
    with pytest.raises(LifespanError):
        await ready
    assert log == []


async def test_a_port_in_use_raises_oserror(app: Flask) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            await app.serve(port=port, shutdown_trigger=asyncio.Event().wait)


async def test_serve_with_tls(app: Flask) -> None:
    ready = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        app.serve(port=0, ssl_context="adhoc", ready=ready, shutdown_trigger=stop.wait)
    )
    url = await ready
    assert url.startswith("https://")
    async with httpx.AsyncClient(base_url=url, verify=False) as http:
        assert (await http.get("/")).json()["scheme"] == "https"
    stop.set()
    await server


async def test_run_task_takes_quarts_arguments(app: Flask, log: list[str]) -> None:
    certfile, keyfile = _adhoc_certificate()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.ensure_future(
        app.run_task(port=port, certfile=certfile, keyfile=keyfile, shutdown_trigger=stop.wait)
    )
    async with httpx.AsyncClient(verify=False) as http:
        for _ in range(500):  # no ready future in Quart's signature: poll
            try:
                response = await http.get(f"https://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
        assert response.json() == {"greeting": "hello", "scheme": "https"}
    stop.set()
    await task
    assert log == ["startup", "shutdown"]
    assert Path(certfile).exists()


async def test_a_failing_while_serving_generator_fails_the_startup(
    app: Flask, log: list[str]
) -> None:
    @app.while_serving
    def broker():
        raise ConnectionError("no broker")
        yield  # pragma: no cover

    with pytest.raises(LifespanError, match="ConnectionError: no broker"):
        await app.serve(port=0, shutdown_trigger=asyncio.Event().wait)
    assert log == ["startup"]  # the first generator started, its shutdown code did not run


def test_without_a_trigger_sigterm_stops_the_server(tmp_path: Path) -> None:
    state_log = tmp_path / "state.log"
    process = subprocess.Popen(
        [sys.executable, str(APPS_DIR / "embedded_script.py")],
        cwd=APPS_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "STATE_LOG": str(state_log), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert httpx.get(url + "/").json()["open"] is True
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    # Shut down, then the signal is raised again for the program (uvicorn's way).
    assert process.returncode == -signal.SIGTERM, output
    assert state_log.read_text().splitlines() == ["startup", "shutdown used=1"]


@pytest.mark.parametrize(
    "option", [{"reload": True}, {"workers": 2}, {"uds": "/tmp/x.sock"}, {"fd": 0}]
)
async def test_options_an_embedded_server_cannot_honour(app: Flask, option: dict) -> None:
    with pytest.raises(TypeError, match=r"does not take .*app\.run\(\) or 'flask aiorun'"):
        await app.serve(port=0, **option)


async def test_cancelled_while_starting_it_still_shuts_down(app: Flask, log: list[str]) -> None:
    started = asyncio.Event()

    @app.before_serving
    async def slow():
        started.set()
        await asyncio.sleep(0.2)

    before = other_tasks()
    ready = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        app.serve(port=0, ready=ready, shutdown_trigger=asyncio.Event().wait)
    )
    await started.wait()
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert log == ["startup", "shutdown"]  # startup finished, then the shutdown ran
    assert ready.cancelled()
    assert other_tasks() == before
