"""Blocking sync code in worker threads: @in_thread and AIOFLASK_SYNC_IN_THREAD."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import flask
import flask.testing
import pytest

import aioflask
from _helpers import Exchange, call, http_scope
from aioflask import after_this_request, g, in_thread, request, session


@pytest.fixture
def loop_thread():
    return threading.get_ident()


def test_in_thread_marks_and_returns_the_function():
    def view():
        return "x"

    assert in_thread(view) is view
    assert view.__aioflask_in_thread__ is True


async def test_in_thread_view_runs_in_another_thread(app, http, loop_thread):
    @app.get("/")
    @in_thread
    def index():
        return str(threading.get_ident() != loop_thread)

    assert (await http.get("/")).text == "True"


async def test_in_thread_view_uses_request_g_and_session(app, http, loop_thread):
    @app.before_request
    def before():
        g.before = "set on the loop"

    @app.get("/set/<value>")
    @in_thread
    def set_value(value):
        assert threading.get_ident() != loop_thread
        session["value"] = value
        g.from_thread = "set in the thread"
        return f"{request.path} {request.args.get('q')} {g.before}"

    @app.after_request
    def after(response):
        if "from_thread" in g:
            response.headers["X-From-Thread"] = g.from_thread
        return response

    @app.get("/get")
    @in_thread
    def get_value():
        return session.get("value", "missing")

    response = await http.get("/set/abc?q=1")
    assert response.text == "/set/abc 1 set on the loop"
    assert response.headers["x-from-thread"] == "set in the thread"
    assert (await http.get("/get")).text == "abc"


async def test_in_thread_view_can_await_on_the_loop(app, http, loop_thread):
    async def on_the_loop():
        await asyncio.sleep(0)
        return threading.get_ident() == loop_thread, request.path

    @app.get("/")
    @in_thread
    def index():
        aioflask.await_(asyncio.sleep(0))
        same_thread, path = aioflask.await_(on_the_loop())
        return f"{threading.get_ident() != loop_thread} {same_thread} {path}"

    assert (await http.get("/")).text == "True True /"


async def test_in_thread_view_after_this_request(app, http):
    @app.get("/")
    @in_thread
    def index():
        @after_this_request
        def add_header(response):
            response.headers["X-This"] = "yes"
            return response

        return "ok"

    assert (await http.get("/")).headers["x-this"] == "yes"


async def test_in_thread_view_exception_is_handled(app, http, loop_thread):
    seen = []

    @app.errorhandler(ValueError)
    def handle(error):
        seen.append(threading.get_ident() == loop_thread)
        return f"handled {error}", 400

    @app.get("/")
    @in_thread
    def index():
        raise ValueError("in thread")

    response = await http.get("/")
    assert (response.status_code, response.text) == (400, "handled in thread")
    assert seen == [True]


async def test_blocking_in_thread_view_does_not_stall_the_loop(app, http):
    finished = {}
    start = time.monotonic()

    @app.get("/slow")
    @in_thread
    def slow():
        time.sleep(0.3)
        return "slow"

    @app.get("/fast")
    async def fast():
        await asyncio.sleep(0.01)
        return "fast"

    async def get(path):
        response = await http.get(path)
        finished[path] = time.monotonic() - start
        return response.text

    slow_task = asyncio.ensure_future(get("/slow"))
    await asyncio.sleep(0.05)  # the slow view is now blocking its thread
    assert await get("/fast") == "fast"
    assert not slow_task.done()
    assert await slow_task == "slow"
    assert finished["/fast"] < finished["/slow"]
    assert finished["/fast"] < 0.3
    assert finished["/slow"] >= 0.3


async def test_in_thread_hook(app, http, loop_thread):
    threads = {}

    @app.before_request
    @in_thread
    def before():
        threads["before"] = threading.get_ident()
        g.loaded = "by thread hook"

    @app.get("/")
    def index():
        threads["view"] = threading.get_ident()
        return g.loaded

    assert (await http.get("/")).text == "by thread hook"
    assert threads["before"] != loop_thread
    assert threads["view"] == loop_thread


async def test_sync_views_run_on_the_loop_by_default(app, http, loop_thread):
    threads = {}

    @app.before_request
    def before():
        threads["before"] = threading.get_ident()

    @app.get("/")
    def index():
        threads["view"] = threading.get_ident()
        return "ok"

    @app.teardown_request
    def teardown(exc):
        threads["teardown"] = threading.get_ident()

    await http.get("/")
    assert threads == {"before": loop_thread, "view": loop_thread, "teardown": loop_thread}


async def test_sync_in_thread_config_moves_sync_views_and_hooks(app, http, loop_thread):
    app.config["AIOFLASK_SYNC_IN_THREAD"] = True
    threads = {}

    def record(name):
        threads.setdefault(name, set()).add(threading.get_ident())

    @app.before_request
    def before():
        record("before_request")

    @app.after_request
    def after(response):
        record("after_request")
        return response

    @app.teardown_request
    def teardown_request(exc):
        record("teardown_request")

    @app.teardown_appcontext
    def teardown_appcontext(exc):
        record("teardown_appcontext")

    @app.errorhandler(404)
    def not_found(error):
        record("errorhandler")
        return "custom 404", 404

    @app.get("/sync")
    def sync_view():
        record("sync view")
        aioflask.await_(asyncio.sleep(0))
        return request.path

    @app.get("/async")
    async def async_view():
        record("async view")
        return request.path

    assert (await http.get("/sync")).text == "/sync"
    assert (await http.get("/async")).text == "/async"
    assert (await http.get("/missing")).text == "custom 404"

    assert threads.pop("async view") == {loop_thread}
    assert set(threads) == {
        "before_request",
        "after_request",
        "teardown_request",
        "teardown_appcontext",
        "errorhandler",
        "sync view",
    }
    for name, idents in threads.items():
        assert loop_thread not in idents, name


async def test_sync_in_thread_config_does_not_stall_the_loop(app, http):
    app.config["AIOFLASK_SYNC_IN_THREAD"] = True

    @app.get("/slow")
    def slow():
        time.sleep(0.3)
        return "slow"

    @app.get("/fast")
    def fast():
        return "fast"

    start = time.monotonic()
    slow_task = asyncio.ensure_future(http.get("/slow"))
    await asyncio.sleep(0.05)
    assert (await http.get("/fast")).text == "fast"
    assert not slow_task.done()
    assert time.monotonic() - start < 0.3
    assert (await slow_task).text == "slow"


async def test_concurrent_in_thread_views(app, http):
    barrier = threading.Barrier(3, timeout=5)

    @app.get("/")
    @in_thread
    def index():
        # Three views wait for each other: they run in three threads at once.
        barrier.wait()
        return "ok"

    responses = await asyncio.wait_for(asyncio.gather(*(http.get("/") for _ in range(3))), 10)
    assert [r.text for r in responses] == ["ok"] * 3


def test_in_thread_in_wsgi_mode_runs_directly():
    app = aioflask.Flask(__name__)
    main = threading.get_ident()

    @app.get("/")
    @in_thread
    def index():
        return str(threading.get_ident() == main)

    client = flask.testing.FlaskClient(app, app.response_class)
    assert client.get("/").text == "True"


async def test_disconnect_waits_for_the_in_thread_view_before_teardown(app):
    log = []
    started = threading.Event()
    release = threading.Event()

    @app.get("/")
    @in_thread
    def index():
        started.set()
        release.wait(2)
        log.append("view returned")
        return "ok"

    @app.teardown_request
    def teardown(exc):
        log.append("teardown")

    exchange = Exchange([])
    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
    exchange.disconnect()
    await asyncio.wait({task}, timeout=0.2)
    release.set()
    await asyncio.wait_for(task, 5)
    await asyncio.sleep(0.05)
    assert log == ["view returned", "teardown"]


# The app's thread pool (AIOFLASK_THREADS)


async def test_in_thread_views_run_in_the_apps_pool(app, http):
    @app.get("/")
    @in_thread
    def index():
        return threading.current_thread().name

    assert (await http.get("/")).text.startswith(f"aioflask-{app.name}")
    assert app.thread_pool is not None
    assert app.thread_pool._max_workers == 32


async def test_thread_pool_size_bounds_concurrent_blocking_views(app, http):
    app.config["AIOFLASK_THREADS"] = 2
    lock = threading.Lock()
    running = peak = 0

    @app.get("/")
    @in_thread
    def index():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return "ok"

    responses = await asyncio.gather(*(http.get("/") for _ in range(6)))
    assert [r.text for r in responses] == ["ok"] * 6
    assert peak == 2


async def test_thread_pool_none_uses_the_loops_default_executor(app, http):
    app.config["AIOFLASK_THREADS"] = None
    names = []

    @app.get("/")
    async def index():
        names.append(await aioflask.run_in_thread(lambda: threading.current_thread().name))
        return "ok"

    assert (await http.get("/")).text == "ok"
    assert app.thread_pool is None
    assert not names[0].startswith("aioflask-")


async def test_run_in_thread_uses_the_apps_pool_in_an_app_context(app, http):
    @app.get("/")
    async def index():
        return await aioflask.run_in_thread(lambda: threading.current_thread().name)

    assert (await http.get("/")).text.startswith(f"aioflask-{app.name}")
    # Outside an app context: the loop's default pool.
    name = await aioflask.run_in_thread(lambda: threading.current_thread().name)
    assert not name.startswith("aioflask-")


async def test_thread_pool_is_shut_down_at_lifespan_shutdown_and_made_anew(app):
    @app.get("/")
    @in_thread
    def index():
        return "ok"

    client = app.test_client()
    async with client.lifespan():
        assert (await client.get("/")).text == "ok"
        pool = app.thread_pool
    assert pool is not None and pool._shutdown
    assert app._thread_pool is None
    assert (await client.get("/")).text == "ok"  # a new pool
    assert app.thread_pool is not pool


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_thread_pool_is_made_anew_in_a_forked_process(app):
    parent_pool = app.thread_pool
    assert parent_pool is not None
    parent_pool.submit(lambda: None).result()  # a thread started in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool has no threads here
        try:
            pool = app.thread_pool
            ok = pool is not parent_pool and pool.submit(lambda: 42).result(timeout=5) == 42
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
