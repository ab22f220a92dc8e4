"""The ASGI lifespan protocol: before_serving / after_serving hooks."""

from __future__ import annotations

import asyncio
import gc
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


# -- while_serving --------------------------------------------------------------------


async def test_while_serving_runs_around_serving_in_quarts_order(app):
    log = []

    @app.before_serving
    def before():
        log.append("before_serving")

    @app.while_serving
    def sync_gen():
        log.append(("sync startup", current_app.name))
        aioflask.await_(asyncio.sleep(0))
        yield
        log.append(("sync shutdown", current_app.name))

    @app.while_serving
    async def async_gen():
        await asyncio.sleep(0)
        g.started = True
        log.append(("async startup", current_app.name))
        yield
        log.append(("async shutdown", current_app.name, "started" in g))

    @app.after_serving
    def after():
        log.append("after_serving")

    lifespan = Lifespan(app)
    assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
    assert log == ["before_serving", ("sync startup", app.name), ("async startup", app.name)]
    log.clear()
    assert await lifespan.shutdown() == {"type": "lifespan.shutdown.complete"}
    # After the after_serving hooks, in registration order (as Quart), in a new app context.
    assert log == [
        "after_serving",
        ("sync shutdown", app.name),
        ("async shutdown", app.name, False),
    ]
    await lifespan.finished()


async def test_while_serving_starts_anew_each_time_the_app_is_served(app):
    runs = []

    @app.while_serving
    async def count():
        runs.append("start")
        yield
        runs.append("stop")

    client = app.test_client()
    for _ in range(2):
        async with client.lifespan():
            pass
    assert runs == ["start", "stop", "start", "stop"]


async def test_while_serving_failing_at_startup_closes_the_started_ones(app, caplog):
    log = []

    @app.while_serving
    async def first():
        try:
            log.append("first started")
            yield
            log.append("first shutdown code")
        finally:
            log.append("first closed")

    @app.while_serving
    def second():
        raise ConnectionError("no broker")
        yield  # pragma: no cover

    lifespan = Lifespan(app)
    message = await lifespan.startup()
    assert message["type"] == "lifespan.startup.failed"
    assert "ConnectionError: no broker" in message["message"]
    assert log == ["first started", "first closed"]
    assert "Error in lifespan startup" in caplog.text
    await lifespan.finished()


async def test_while_serving_that_yields_twice_is_an_error(app):
    log = []

    @app.while_serving
    async def greedy():
        yield
        log.append("shutdown")
        try:
            yield
        finally:
            log.append("closed")

    @app.while_serving
    def polite():
        yield
        log.append("polite shutdown")

    lifespan = Lifespan(app)
    await lifespan.startup()
    message = await lifespan.shutdown()
    assert message["type"] == "lifespan.shutdown.failed"
    assert (
        "'test_while_serving_that_yields_twice_is_an_error.<locals>.greedy' yielded more than once"
        in message["message"]
    )
    # The others still shut down; the greedy one was closed.
    assert log == ["shutdown", "closed", "polite shutdown"]
    await lifespan.finished()


async def test_while_serving_that_never_yields_is_an_error(app):
    @app.while_serving
    def empty():
        if False:
            yield

    lifespan = Lifespan(app)
    message = await lifespan.startup()
    assert message["type"] == "lifespan.startup.failed"
    assert "ended without yielding" in message["message"]
    await lifespan.finished()


def test_while_serving_refuses_a_function_without_yield(app):
    with pytest.raises(TypeError, match=r"no 'yield'.*before_serving and after_serving"):

        @app.while_serving
        async def not_a_generator():
            pass

    with pytest.raises(TypeError, match="takes a generator function"):
        app.while_serving(lambda: None)
    assert app.while_serving_funcs == []


async def test_while_serving_sync_generator_in_thread(app):
    threads = []

    @app.while_serving
    @aioflask.in_thread
    def blocking():
        threads.append(threading.get_ident())
        yield
        threads.append(threading.get_ident())

    async with app.test_client().lifespan():
        pass
    assert len(threads) == 2
    assert threading.get_ident() not in threads


async def test_blueprint_serving_hooks(app):
    log = []
    bp = aioflask.Blueprint("bp", __name__)

    @bp.before_app_serving
    def before():
        log.append("before")

    @bp.while_app_serving
    async def around():
        log.append("startup")
        yield
        log.append("shutdown")

    @bp.after_app_serving
    async def after():
        log.append("after")

    with pytest.raises(TypeError, match="no 'yield'"):
        bp.while_app_serving(after)
    app.register_blueprint(bp)
    app.register_blueprint(bp, name="again")  # recorded once
    async with app.test_client().lifespan():
        assert log == ["before", "startup"]
    assert log == ["before", "startup", "after", "shutdown"]


async def test_what_exists_at_startup_is_frozen_while_serving(app):
    made_by_hook = []

    @app.before_serving
    def make():
        made_by_hook.append([object()])

    lifespan = Lifespan(app)
    await lifespan.startup()
    assert gc.get_freeze_count() > 0
    assert not any(made_by_hook[0] is o for o in gc.get_objects())  # not walked any more
    await lifespan.shutdown()
    await lifespan.finished()
    assert gc.get_freeze_count() == 0  # collectable again
    assert any(made_by_hook[0] is o for o in gc.get_objects())


async def test_gc_freeze_can_be_turned_off(app):
    app.config["AIOFLASK_GC_FREEZE"] = False
    before = gc.get_freeze_count()
    lifespan = Lifespan(app)
    await lifespan.startup()
    assert gc.get_freeze_count() == before
    await lifespan.shutdown()
    await lifespan.finished()


async def test_a_failed_startup_freezes_nothing(app):
    @app.before_serving
    def fail():
        raise RuntimeError("no database")

    before = gc.get_freeze_count()
    lifespan = Lifespan(app)
    assert (await lifespan.startup())["type"] == "lifespan.startup.failed"
    assert gc.get_freeze_count() == before
