"""The ASGI lifespan protocol: before_serving / after_serving hooks."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import aioflask
from _helpers import asgi_client
from aioflask import current_app, g


class Lifespan:
    """The server side of the lifespan protocol, one message at a time."""

    def __init__(self, app):
        self.app = app
        self.to_app: asyncio.Queue[dict] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict] = asyncio.Queue()
        self.task: asyncio.Future[None] | None = None

    async def _exchange(self, message):
        if self.task is None:
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
            self.task = asyncio.ensure_future(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put(message)
        getter = asyncio.ensure_future(self.from_app.get())
        done, _ = await asyncio.wait({getter, self.task}, timeout=5, return_when="FIRST_COMPLETED")
        if getter not in done:
            getter.cancel()
            if self.task.done():
                self.task.result()  # raise the app's exception
            raise AssertionError("no answer from the app")
        return getter.result()

    async def startup(self):
        return await self._exchange({"type": "lifespan.startup"})

    async def shutdown(self):
        return await self._exchange({"type": "lifespan.shutdown"})

    async def finished(self):
        """Wait for the app's lifespan call to return."""
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
def app():
    return aioflask.Flask(__name__)


async def test_startup_and_shutdown_without_hooks(app):
    lifespan = Lifespan(app)
    assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
    assert await lifespan.shutdown() == {"type": "lifespan.shutdown.complete"}
    await lifespan.finished()


async def test_serving_hooks_run_in_order_in_an_app_context(app):
    log = []
    loop_thread = threading.get_ident()

    @app.before_serving
    async def first():
        await asyncio.sleep(0)
        log.append(("startup async", current_app.name))
        g.shared = "from the first hook"

    @app.before_serving
    def second():
        aioflask.await_(asyncio.sleep(0))
        log.append(("startup sync", current_app.name, g.shared))
        assert threading.get_ident() == loop_thread

    @app.after_serving
    def third():
        log.append(("shutdown sync", current_app.name))

    @app.after_serving
    async def fourth():
        await asyncio.sleep(0)
        log.append(("shutdown async", current_app.name))

    lifespan = Lifespan(app)
    assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
    assert log == [
        ("startup async", app.name),
        ("startup sync", app.name, "from the first hook"),
    ]
    log.clear()
    assert await lifespan.shutdown() == {"type": "lifespan.shutdown.complete"}
    assert log == [("shutdown sync", app.name), ("shutdown async", app.name)]
    await lifespan.finished()


async def test_requests_are_served_between_startup_and_shutdown(app):
    @app.before_serving
    async def connect():
        app.extensions["resource"] = "open"

    @app.after_serving
    async def disconnect():
        app.extensions["resource"] = "closed"

    @app.get("/")
    async def index():
        return current_app.extensions["resource"]

    lifespan = Lifespan(app)
    await lifespan.startup()
    async with asgi_client(app) as http:
        assert (await http.get("/")).text == "open"
    await lifespan.shutdown()
    await lifespan.finished()
    assert app.extensions["resource"] == "closed"


async def test_serving_hook_decorators_return_the_function(app):
    async def hook():
        pass

    assert app.before_serving(hook) is hook
    assert app.after_serving(hook) is hook
    assert app.before_serving_funcs == [hook]
    assert app.after_serving_funcs == [hook]


async def test_failing_startup_hook(app, caplog):
    log = []

    @app.before_serving
    async def broken():
        await asyncio.sleep(0)
        raise RuntimeError("database unreachable")

    @app.before_serving
    def never():
        log.append("second startup hook")

    @app.after_serving
    def never_either():
        log.append("shutdown hook")

    lifespan = Lifespan(app)
    with caplog.at_level(logging.ERROR):
        message = await lifespan.startup()
    assert message["type"] == "lifespan.startup.failed"
    assert "database unreachable" in message["message"]
    assert "RuntimeError" in message["message"]
    # The server exits; the lifespan call returns normally.
    await lifespan.finished()
    assert log == []
    assert "Error in lifespan startup" in caplog.text


async def test_failing_sync_startup_hook(app):
    @app.before_serving
    def broken():
        raise ValueError("bad configuration")

    lifespan = Lifespan(app)
    message = await lifespan.startup()
    assert message["type"] == "lifespan.startup.failed"
    assert "bad configuration" in message["message"]
    await lifespan.finished()


async def test_failing_shutdown_hook(app, caplog):
    log = []

    @app.after_serving
    async def broken():
        await asyncio.sleep(0)
        raise RuntimeError("flush failed")

    @app.after_serving
    def after():
        log.append("later shutdown hook")

    lifespan = Lifespan(app)
    assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
    with caplog.at_level(logging.ERROR):
        message = await lifespan.shutdown()
    assert message["type"] == "lifespan.shutdown.failed"
    assert "flush failed" in message["message"]
    await lifespan.finished()
    assert log == []
    assert "Error in lifespan shutdown" in caplog.text


async def test_app_context_is_popped_after_each_phase(app):
    @app.before_serving
    def startup():
        g.value = "startup"

    @app.after_serving
    def shutdown():
        assert "value" not in g

    lifespan = Lifespan(app)
    assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
    assert not aioflask.has_app_context()
    assert await lifespan.shutdown() == {"type": "lifespan.shutdown.complete"}
    await lifespan.finished()
