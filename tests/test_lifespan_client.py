"""``client.lifespan()``: the ASGI lifespan in tests; failing startup under a real server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest

from _uvicorn import APPS_DIR, UvicornProcess
from aioflask import Flask, current_app, g
from aioflask.testing import LifespanError

UVICORN_VERSION = tuple(int(part) for part in version("uvicorn").split(".")[:2])


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


async def test_hooks_run_around_the_block(app):
    log = []

    @app.before_serving
    async def open_pool():
        await asyncio.sleep(0)
        app.extensions["pool"] = "open"
        g.startup = True
        log.append(("startup", current_app.name))

    @app.after_serving
    def close_pool():
        app.extensions["pool"] = "closed"
        log.append(("shutdown", "startup" in g))

    @app.get("/")
    async def index():
        return {"pool": app.extensions["pool"]}

    client = app.test_client()
    async with client.lifespan():
        assert log == [("startup", app.name)]
        assert (await client.get("/")).json == {"pool": "open"}
    assert log == [("startup", app.name), ("shutdown", False)]
    assert app.extensions["pool"] == "closed"


async def test_failing_startup_raises(app):
    log = []

    @app.before_serving
    def broken():
        raise RuntimeError("no database")

    @app.after_serving
    def never():
        log.append("shutdown")

    with pytest.raises(LifespanError, match="RuntimeError: no database"):
        async with app.test_client().lifespan():
            log.append("block")
    assert log == []


async def test_failing_shutdown_raises(app):
    @app.after_serving
    async def broken():
        raise ValueError("flush failed")

    with pytest.raises(LifespanError, match="ValueError: flush failed"):
        async with app.test_client().lifespan():
            pass


async def test_an_error_in_the_block_still_shuts_down(app):
    log = []

    @app.after_serving
    def shutdown():
        log.append("shutdown")

    with pytest.raises(KeyError):
        async with app.test_client().lifespan():
            raise KeyError("in the test")
    assert log == ["shutdown"]


async def test_background_tasks_are_drained_on_exit(app):
    log = []

    async def task():
        await asyncio.sleep(0.05)
        log.append("task")

    @app.after_serving
    def shutdown():
        log.append("after_serving")

    @app.post("/")
    def index():
        app.add_background_task(task)
        return "ok"

    client = app.test_client()
    async with client.lifespan():
        await client.post("/")
        assert log == []
    assert log == ["task", "after_serving"]


async def test_usable_as_a_fixture_pattern(app):
    """The documented fixture: one lifespan around a test's requests."""

    @app.before_serving
    def start():
        app.extensions["started"] = True

    @app.get("/")
    def index():
        return {"started": app.extensions.get("started", False)}

    async def fixture():
        client = app.test_client()
        async with client.lifespan():
            yield client

    gen = fixture()
    client = await gen.__anext__()
    assert (await client.get("/")).json == {"started": True}
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()


# -- a failing startup stops the real server -----------------------------------------


async def test_uvicorn_stops_when_startup_fails(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    log = tmp_path / "realtime.log"
    env = {"REALTIME_LOG": str(log), "REALTIME_FAIL_STARTUP": "1"}
    server = start_server("realtime_app:app", env=env, wait=False)
    assert server.wait_exit(30) == 3  # uvicorn's exit code for a failed startup
    assert "RuntimeError: the database is unreachable" in server.log
    assert "Application startup failed. Exiting." in server.log
    assert "Uvicorn running" not in server.log
    assert log.read_text().splitlines() == ["startup"]


@pytest.mark.parametrize("workers", [1, 2])
def test_flask_aiorun_stops_when_startup_fails(tmp_path: Path, workers: int) -> None:
    if workers > 1 and UVICORN_VERSION < (0, 50):
        pytest.skip("uvicorn < 0.50 restarts a worker that fails to start, forever")
    log = tmp_path / "realtime.log"
    env = {
        **os.environ,
        "REALTIME_LOG": str(log),
        "REALTIME_FAIL_STARTUP": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        *(sys.executable, "-m", "flask", "--app", "realtime_app:app", "aiorun"),
        *("--port", "0", "--workers", str(workers)),
    ]
    process = subprocess.Popen(
        command, cwd=APPS_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"flask aiorun did not stop:\n{output}") from None
    assert "RuntimeError: the database is unreachable" in output
    assert "Application startup failed" in output
    if workers == 1:
        assert "Uvicorn running" not in output
        assert process.returncode == 3
    else:
        # uvicorn's supervisor stops, but exits 0 (uvicorn's choice).
        assert "failed to start, stopping the parent process" in output
    assert set(log.read_text().splitlines()) == {"startup"}
