"""Background tasks: after the response, in an app context, logged, drained at shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest

import aioflask
from _uvicorn import UvicornProcess
from aioflask import (
    Flask,
    await_,
    current_app,
    g,
    has_request_context,
    in_thread,
    request,
    websocket,
)

TIMEOUT = 5.0

user_var: contextvars.ContextVar[str] = contextvars.ContextVar("test_user_var", default="unset")


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


async def test_task_starts_after_the_response_is_sent(app):
    timeline = []

    async def task():
        timeline.append("task")

    @app.get("/")
    def index():
        app.add_background_task(task)
        timeline.append("view")

        def body():
            yield b"a"
            timeline.append("body")
            yield b"b"

        return body()

    requested = []
    finished = asyncio.Event()

    async def receive():
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # like a server: nothing more until the client goes
        return {"type": "http.disconnect"}

    async def send(message):
        timeline.append(message["type"])
        await asyncio.sleep(0)  # the task must still wait for the end
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await app(http_scope("/"), receive, send)
    assert len(app.background_tasks) == 1
    assert await app.background_tasks.wait(TIMEOUT)
    assert timeline == [
        "view",
        "http.response.start",
        "http.response.body",
        "body",
        "http.response.body",
        "http.response.body",  # the end of the body
        "task",
    ]
    assert len(app.background_tasks) == 0


async def test_async_and_sync_functions_with_arguments(app, client):
    loop_thread = threading.get_ident()
    calls = []

    async def async_task(a, b=None):
        await asyncio.sleep(0)
        calls.append(("async", a, b))

    def sync_task(a, b=None):
        await_(asyncio.sleep(0))  # on the bridge
        calls.append(("sync", a, b, threading.get_ident() == loop_thread))

    @app.post("/")
    def index():
        app.add_background_task(async_task, 1, b=2)
        app.add_background_task(sync_task, "x", b="y")
        return "ok"

    await client.post("/")
    assert await app.background_tasks.wait(TIMEOUT)
    assert sorted(calls) == [("async", 1, 2), ("sync", "x", "y", True)]


async def test_what_a_task_sees(app, client):
    seen = {}

    async def task():
        seen["app"] = current_app._get_current_object()
        seen["request"] = has_request_context()
        seen["g"] = dict(g)
        seen["var"] = user_var.get()
        g.own = "mine"  # a fresh g of its own

    @app.get("/")
    async def index():
        g.request_data = "not copied"
        user_var.set("copied")
        app.add_background_task(task)
        return "ok"

    await client.get("/")
    assert await app.background_tasks.wait(TIMEOUT)
    assert seen == {"app": app, "request": False, "g": {}, "var": "copied"}


async def test_exceptions_are_logged(app, client, caplog):
    done = []

    async def failing():
        raise ValueError("task failed")

    def failing_sync():
        raise KeyError("sync task failed")

    async def fine():
        done.append(True)

    @app.get("/")
    def index():
        app.add_background_task(failing)
        app.add_background_task(failing_sync)
        app.add_background_task(fine)
        return "ok"

    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        assert (await client.get("/")).status_code == 200
        assert await app.background_tasks.wait(TIMEOUT)
    assert done == [True]
    messages = [r.getMessage() for r in caplog.records]
    assert "Exception in background task test_exceptions_are_logged.<locals>.failing" in messages
    assert any("failing_sync" in m for m in messages)
    assert "ValueError: task failed" in caplog.text
    assert "KeyError: 'sync task failed'" in caplog.text


async def test_got_background_exception_is_sent(app, client):
    seen = []

    def sync_receiver(sender: Flask, exception: Exception, **kwargs: Any) -> None:
        seen.append(("sync", sender, repr(exception), flask.has_app_context()))

    async def async_receiver(sender: Flask, exception: Exception, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        seen.append(("async", sender, repr(exception)))

    async def failing():
        raise ValueError("task failed")

    async def fine():
        pass

    @app.get("/")
    def index():
        app.add_background_task(failing)
        app.add_background_task(fine)
        return "ok"

    aioflask.got_background_exception.connect(sync_receiver, app)
    aioflask.got_background_exception.connect(async_receiver, app)
    try:
        assert (await client.get("/")).status_code == 200
        assert await app.background_tasks.wait(TIMEOUT)
    finally:
        aioflask.got_background_exception.disconnect(sync_receiver, app)
        aioflask.got_background_exception.disconnect(async_receiver, app)
    # Once per failing task, as Quart sends it: after the task's app context.
    assert sorted(seen, key=repr) == [
        ("async", app, "ValueError('task failed')"),
        ("sync", app, "ValueError('task failed')", False),
    ]


async def test_a_failing_got_background_exception_receiver_is_logged(app, caplog):
    def broken_receiver(sender: Flask, **kwargs: Any) -> None:
        raise RuntimeError("the receiver failed")

    async def failing():
        raise ValueError("task failed")

    aioflask.got_background_exception.connect(broken_receiver, app)
    try:
        with caplog.at_level(logging.ERROR, logger=app.logger.name):
            app.add_background_task(failing)
            assert await app.background_tasks.wait(TIMEOUT)
    finally:
        aioflask.got_background_exception.disconnect(broken_receiver, app)
    assert "RuntimeError: the receiver failed" in caplog.text
    assert "ValueError: task failed" in caplog.text  # still logged
    assert len(app.background_tasks) == 0  # nothing left behind


async def test_tasks_are_held_by_strong_references(app, client):
    release = asyncio.Event()
    done = []

    async def task():
        await release.wait()
        done.append(True)

    @app.get("/")
    def index():
        app.add_background_task(task)
        return "ok"

    await client.get("/")
    await asyncio.sleep(0)
    gc.collect()
    assert len(app.background_tasks) == 1
    release.set()
    assert await app.background_tasks.wait(TIMEOUT)
    assert done == [True]


async def test_a_failing_request_still_runs_its_tasks(app, client):
    done = []

    @app.get("/")
    def index():
        app.add_background_task(done.append, "ran")
        raise RuntimeError("view failed")

    assert (await client.get("/")).status_code == 500
    assert await app.background_tasks.wait(TIMEOUT)
    assert done == ["ran"]


async def test_outside_a_request_a_task_starts_at_once(app, client):
    started = asyncio.Event()

    async def task(where):
        started.set()

    @app.before_serving
    def hook():
        app.add_background_task(task, "before_serving")

    @app.websocket("/ws")
    async def ws():
        await websocket.accept()
        app.add_background_task(task, "websocket")
        # Not after the connection: now.
        await asyncio.wait_for(started.wait(), TIMEOUT)
        await websocket.send("started")

    async with client.lifespan():
        await asyncio.wait_for(started.wait(), TIMEOUT)
        started.clear()
        async with client.websocket("/ws") as conn:
            assert await asyncio.wait_for(conn.receive(), TIMEOUT) == "started"


async def test_a_preserved_request_context_starts_tasks_at_once(app, client):
    done = []

    @app.get("/")
    def index():
        return "ok"

    async with client:
        await client.get("/")
        assert request.path == "/"
        app.add_background_task(done.append, "after the response")
        assert await app.background_tasks.wait(TIMEOUT)
    assert done == ["after the response"]


async def test_tasks_added_by_tasks_are_waited_for(app, client):
    done = []

    async def second():
        await asyncio.sleep(0.01)
        done.append("second")

    async def first():
        current_app.add_background_task(second)  # type: ignore[attr-defined]
        done.append("first")

    @app.get("/")
    def index():
        app.add_background_task(first)
        return "ok"

    async with client.lifespan():
        await client.get("/")
    assert done == ["first", "second"]


async def test_in_thread_task(app, client):
    threads = []

    @in_thread
    def blocking():
        time.sleep(0.01)
        threads.append((threading.get_ident(), current_app.name))

    @app.get("/")
    def index():
        app.add_background_task(blocking)
        return "ok"

    await client.get("/")
    assert await app.background_tasks.wait(TIMEOUT)
    assert threads and threads[0][0] != threading.get_ident()
    assert threads[0][1] == app.name


async def test_wait_times_out(app, client):
    async def forever():
        await asyncio.sleep(3600)

    app.add_background_task(forever)
    assert not await app.background_tasks.wait(0.01)
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 0
    await app.background_tasks.drain()
    assert len(app.background_tasks) == 0


async def test_drained_at_shutdown_before_after_serving(app, client):
    log = []

    async def slow():
        await asyncio.sleep(0.1)
        log.append("task done")

    @app.after_serving
    def after():
        log.append("after_serving")

    @app.get("/")
    def index():
        app.add_background_task(slow)
        return "ok"

    async with client.lifespan():
        await client.get("/")
        log.append("shutdown begins")
    assert log == ["shutdown begins", "task done", "after_serving"]


async def test_shutdown_timeout_cancels_and_logs(app, client, caplog):
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 0.05
    log = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("cleaned up")

    @app.after_serving
    def after():
        log.append("after_serving")

    @app.get("/")
    def index():
        app.add_background_task(forever)
        return "ok"

    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        async with client.lifespan():
            await client.get("/")
    assert time.monotonic() - start < 2
    assert log == ["cleaned up", "after_serving"]
    assert "Cancelling 1 background task(s) still running after 0.05 s" in caplog.text
    assert "forever" in caplog.text


async def test_a_task_that_ignores_cancellation_is_reported(app, client, caplog, monkeypatch):
    monkeypatch.setattr(aioflask.tasks, "CANCEL_GRACE", 0.05)
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 0.01
    release = asyncio.Event()

    async def stubborn():
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await release.wait()

    app.add_background_task(stubborn)
    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        await app.background_tasks.drain()
    assert "1 background task(s) did not stop when cancelled" in caplog.text
    release.set()
    assert await app.background_tasks.wait(TIMEOUT)


def test_without_an_event_loop_the_task_runs_at_once():
    app = Flask(__name__)
    log = []

    async def async_task(x):
        await asyncio.sleep(0)
        log.append(("async", x, current_app.name))

    @app.get("/")
    def index():
        app.add_background_task(async_task, 1)
        app.add_background_task(log.append, "sync")
        log.append("view")
        return "ok"

    # Flask's own (WSGI) test client: no event loop runs.
    response = flask.testing.FlaskClient(app).get("/")
    assert response.status_code == 200
    assert log == [("async", 1, app.name), "sync", "view"]


# -- under uvicorn ---------------------------------------------------------------------


async def wait_for_line(path: Path, line: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and line in path.read_text().splitlines()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{line!r} not in {path}")
        await asyncio.sleep(0.02)


async def test_uvicorn_drains_tasks_at_shutdown(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    log = tmp_path / "realtime.log"
    server = start_server("realtime_app:app", env={"REALTIME_LOG": str(log)})
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/task/t1", params={"seconds": "0.5"})
    assert response.json() == {"started": "t1"}
    await wait_for_line(log, "task t1 started")
    server.process.send_signal(signal.SIGTERM)
    assert server.wait_exit(15) in (0, -signal.SIGTERM)
    assert log.read_text().splitlines() == [
        "startup",
        "task t1 started",
        "task t1 done in realtime_app",
        "after_serving",
    ]


async def test_uvicorn_cancels_tasks_after_the_timeout(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    log = tmp_path / "realtime.log"
    env = {"REALTIME_LOG": str(log), "REALTIME_TASK_TIMEOUT": "0.2"}
    server = start_server("realtime_app:app", env=env)
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post("/task/t2", params={"seconds": "3600"})
    await wait_for_line(log, "task t2 started")
    start = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.wait_exit(15) in (0, -signal.SIGTERM)
    assert time.monotonic() - start < 5
    assert log.read_text().splitlines() == [
        "startup",
        "task t2 started",
        "task t2 cancelled",
        "after_serving",
    ]
    assert "Cancelling 1 background task(s) still running after 0.2 s" in server.log


def test_a_sync_test_waits_for_the_tasks_of_its_request(app):
    done = []

    async def task():
        await asyncio.sleep(0.01)
        done.append("task")

    @app.post("/signup")
    def signup():
        app.add_background_task(task)
        return "ok"

    client = app.test_client()
    assert client.post("/signup").text == "ok"
    assert app.background_tasks.wait(TIMEOUT) is True
    assert done == ["task"]
