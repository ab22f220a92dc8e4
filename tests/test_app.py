"""The aioflask app: async views, hooks and handlers on the ASGI path, WSGI mode."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading

import flask
import flask.testing
import httpx
import pytest
import uvicorn
import werkzeug.test
from flask.views import MethodView, View
from werkzeug.middleware.proxy_fix import ProxyFix

import aioflask
from _helpers import Exchange, asgi_client, call, http_scope
from aioflask import (
    Blueprint,
    after_this_request,
    await_,
    copy_current_request_context,
    flash,
    g,
    request,
    session,
)


async def tick():
    """Suspend once on the loop (proves the code really ran as a coroutine)."""
    await asyncio.sleep(0)


# Views


async def test_async_view(app, http):
    loop_thread = threading.get_ident()

    @app.get("/")
    async def index():
        await tick()
        assert threading.get_ident() == loop_thread
        assert asyncio.current_task() is not None
        return "hello"

    response = await http.get("/")
    assert response.status_code == 200
    assert response.text == "hello"


async def test_sync_view_runs_on_the_loop_thread(app, http):
    loop_thread = threading.get_ident()

    @app.get("/")
    def index():
        assert aioflask.bridge.in_bridge()
        return str(threading.get_ident() == loop_thread)

    assert (await http.get("/")).text == "True"


async def test_sync_view_awaits(app, http):
    @app.get("/")
    def index():
        return aioflask.await_(asyncio.sleep(0, "awaited from sync"))

    assert (await http.get("/")).text == "awaited from sync"


async def test_async_view_with_url_arguments_and_jsonify(app, http):
    @app.get("/items/<int:item_id>")
    async def item(item_id):
        await tick()
        return aioflask.jsonify(id=item_id, args=request.args.to_dict())

    response = await http.get("/items/7?x=1")
    assert response.json() == {"id": 7, "args": {"x": "1"}}


async def test_async_view_abort_and_redirect(app, http):
    @app.get("/missing")
    async def missing():
        await tick()
        aioflask.abort(404)

    @app.get("/go")
    async def go():
        await tick()
        return aioflask.redirect("/elsewhere")

    assert (await http.get("/missing")).status_code == 404
    response = await http.get("/go")
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"


async def test_async_view_exception_is_a_500(app, http):
    @app.get("/")
    async def index():
        await tick()
        raise ValueError("boom")

    assert (await http.get("/")).status_code == 500


async def test_async_view_calls_sync_code_that_awaits(app, http):
    def sync_helper():
        # Sync code (an extension, say) called from an async view may wait.
        return aioflask.await_(asyncio.sleep(0, "awaited"))

    @app.get("/")
    async def index():
        await tick()
        return sync_helper()

    assert (await http.get("/")).text == "awaited"


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="Python 3.11+")
async def test_asyncio_timeout_in_async_view(app, http):
    @app.get("/")
    async def index():
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "not timed out"

    assert (await http.get("/")).text == "timed out"


async def test_asyncio_wait_for_in_async_view(app, http):
    @app.get("/")
    async def index():
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        except asyncio.TimeoutError:
            return "timed out"
        return "not timed out"

    assert (await http.get("/")).text == "timed out"


def test_ensure_sync():
    app = aioflask.Flask(__name__)

    def sync_view():
        return "sync"

    async def async_view():
        return "async"

    assert app.ensure_sync(sync_view) is sync_view
    wrapped = app.ensure_sync(async_view)
    assert not inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "async_view"
    assert wrapped.__wrapped__ is async_view
    # No loop running here: the coroutine runs on a private loop.
    assert wrapped() == "async"


# before_request / after_request / after_this_request


async def test_async_before_request(app, http):
    @app.before_request
    async def load():
        await tick()
        g.user = "alice"

    @app.get("/")
    async def index():
        await tick()
        return g.user

    assert (await http.get("/")).text == "alice"


async def test_async_before_request_short_circuits(app, http):
    log = []

    @app.before_request
    async def deny():
        await tick()
        return "denied", 403

    @app.after_request
    def after(response):
        log.append("after_request")
        return response

    @app.get("/")
    async def index():
        log.append("view")
        return "view"

    response = await http.get("/")
    assert response.status_code == 403
    assert response.text == "denied"
    assert log == ["after_request"]


async def test_async_after_request(app, http):
    @app.after_request
    async def add_header(response):
        await tick()
        response.headers["X-After"] = "async"
        return response

    @app.get("/")
    def index():
        return "ok"

    assert (await http.get("/")).headers["x-after"] == "async"


async def test_async_after_this_request(app, http):
    @app.get("/sync")
    def sync_view():
        @after_this_request
        async def add_header(response):
            await tick()
            response.headers["X-This"] = "sync view"
            return response

        return "ok"

    @app.get("/async")
    async def async_view():
        @after_this_request
        async def add_header(response):
            await tick()
            response.headers["X-This"] = "async view"
            return response

        await tick()
        return "ok"

    assert (await http.get("/sync")).headers["x-this"] == "sync view"
    assert (await http.get("/async")).headers["x-this"] == "async view"


# Error handlers


async def test_async_error_handler_for_http_code(app, http):
    @app.errorhandler(404)
    async def not_found(error):
        await tick()
        return f"custom {error.code}", 404

    response = await http.get("/nowhere")
    assert response.status_code == 404
    assert response.text == "custom 404"


async def test_async_error_handler_for_exception_class(app, http):
    class AppError(Exception):
        pass

    @app.errorhandler(AppError)
    async def handle(error):
        await tick()
        return f"handled {error}", 409

    @app.get("/")
    async def index():
        await tick()
        raise AppError("conflict")

    response = await http.get("/")
    assert response.status_code == 409
    assert response.text == "handled conflict"


async def test_async_error_handler_for_500(app, http):
    @app.errorhandler(500)
    async def server_error(error):
        await tick()
        return f"500 for {type(error.original_exception).__name__}", 500

    @app.get("/")
    def index():
        raise KeyError("oops")

    response = await http.get("/")
    assert response.status_code == 500
    assert response.text == "500 for KeyError"


async def test_async_error_handler_for_error_in_async_hook(app, http):
    @app.before_request
    async def fail():
        await tick()
        raise LookupError("in hook")

    @app.errorhandler(LookupError)
    async def handle(error):
        return "hook error handled", 400

    @app.get("/")
    def index():
        return "unreachable"

    response = await http.get("/")
    assert response.status_code == 400
    assert response.text == "hook error handled"


# Teardown


async def test_async_teardown_request(app, http):
    log = []

    @app.teardown_request
    async def teardown(exc):
        await tick()
        log.append(("teardown_request", request.path, exc))

    @app.get("/")
    async def index():
        return "ok"

    @app.get("/fail")
    async def fail():
        raise ValueError("x")

    await http.get("/")
    assert log == [("teardown_request", "/", None)]
    log.clear()
    await http.get("/fail")
    assert log[0][:2] == ("teardown_request", "/fail")
    assert isinstance(log[0][2], ValueError)


async def test_async_teardown_appcontext(app, http):
    log = []

    @app.teardown_appcontext
    async def teardown(exc):
        await tick()
        log.append(("teardown_appcontext", g.get("value"), exc))

    @app.get("/")
    async def index():
        g.value = 42
        return "ok"

    await http.get("/")
    assert log == [("teardown_appcontext", 42, None)]


# Templates


async def test_async_context_processor(app, http):
    @app.context_processor
    async def inject():
        await tick()
        return {"user": "carol"}

    @app.get("/")
    def index():
        return flask.render_template_string("hello {{ user }}")

    assert (await http.get("/")).text == "hello carol"


async def test_async_context_processor_with_flask_render_in_async_view(app, http):
    @app.context_processor
    async def inject():
        return {"user": "carol"}

    @app.get("/")
    async def index():
        await tick()
        return flask.render_template_string("hello {{ user }}")

    assert (await http.get("/")).text == "hello carol"


async def test_async_context_processor_with_awaited_render_in_async_view(app, http):
    @app.context_processor
    async def inject():
        await tick()
        return {"user": "dave"}

    @app.get("/")
    async def index():
        await tick()
        return await aioflask.render_template_string("hello {{ user }} {{ request.path }}")

    assert (await http.get("/")).text == "hello dave /"


async def test_flask_render_template_string_in_async_view(app, http):
    # Extensions call flask.render_template; the async Jinja environment's sync
    # render() goes through await_(), which fails in an async view.
    @app.get("/")
    async def index():
        return flask.render_template_string("hello {{ 1 + 1 }}")

    assert (await http.get("/")).text == "hello 2"


async def test_async_template_signal_receivers(app, http):
    log = []

    async def before_render(sender, template, context, **extra):
        await tick()
        log.append(("before", context["name"]))

    async def rendered(sender, template, context, **extra):
        await tick()
        log.append(("rendered", context["name"]))

    @app.get("/")
    def index():
        return flask.render_template_string("{{ name }}", name="x")

    with (
        flask.before_render_template.connected_to(before_render, app),
        flask.template_rendered.connected_to(rendered, app),
    ):
        assert (await http.get("/")).text == "x"
    assert log == [("before", "x"), ("rendered", "x")]


# Class-based views


async def test_method_view_with_async_methods(app, http):
    class ItemAPI(MethodView):
        async def get(self, item_id):
            await tick()
            return f"get {item_id}"

        async def post(self, item_id):
            await tick()
            return f"post {item_id}", 201

        def delete(self, item_id):
            return f"delete {item_id}"

    app.add_url_rule("/items/<int:item_id>", view_func=ItemAPI.as_view("item"))
    assert (await http.get("/items/1")).text == "get 1"
    response = await http.post("/items/2")
    assert (response.status_code, response.text) == (201, "post 2")
    assert (await http.delete("/items/3")).text == "delete 3"
    assert (await http.put("/items/4")).status_code == 405


@pytest.mark.parametrize("init_every_request", [True, False])
async def test_view_with_async_dispatch_request(app, http, init_every_request):
    class Hello(View):
        methods = ["GET"]

        def __init__(self, greeting):
            self.greeting = greeting

        async def dispatch_request(self, name):
            await tick()
            return f"{self.greeting} {name}"

    Hello.init_every_request = init_every_request
    app.add_url_rule("/hello/<name>", view_func=Hello.as_view("hello", "hi"))
    assert (await http.get("/hello/bob")).text == "hi bob"


# Blueprints


async def test_blueprint_async_hooks(app, http):
    log = []
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.before_request
    async def bp_before():
        await tick()
        g.bp = "loaded"
        log.append("before")

    @bp.after_request
    async def bp_after(response):
        await tick()
        response.headers["X-BP"] = g.bp
        log.append("after")
        return response

    @bp.teardown_request
    async def bp_teardown(exc):
        await tick()
        log.append(("teardown", type(exc).__name__ if exc else None))

    @bp.errorhandler(ValueError)
    async def bp_error(error):
        await tick()
        return f"bp handled {error}", 422

    @bp.get("/")
    async def bp_index():
        await tick()
        return "bp index"

    @bp.get("/fail")
    async def bp_fail():
        raise ValueError("bad")

    @app.get("/outside")
    def outside():
        return "outside"

    app.register_blueprint(bp)

    response = await http.get("/bp/")
    assert response.text == "bp index"
    assert response.headers["x-bp"] == "loaded"
    assert log == ["before", "after", ("teardown", None)]

    log.clear()
    response = await http.get("/bp/fail")
    assert (response.status_code, response.text) == (422, "bp handled bad")
    assert response.headers["x-bp"] == "loaded"
    # The exception was handled: teardown gets no exception.
    assert log == ["before", "after", ("teardown", None)]

    log.clear()
    response = await http.get("/outside")
    assert response.text == "outside"
    assert "x-bp" not in response.headers
    assert log == []


async def test_blueprint_app_wide_async_hooks(app, http):
    bp = Blueprint("bp", __name__)

    @bp.before_app_request
    async def before_app():
        g.marker = "app-wide"

    @bp.app_errorhandler(404)
    async def not_found(error):
        return f"bp 404 {g.marker}", 404

    app.register_blueprint(bp)
    assert (await http.get("/nowhere")).text == "bp 404 app-wide"


# Signals


@contextlib.contextmanager
def connected(signal, receiver, sender):
    with signal.connected_to(receiver, sender):
        yield


async def test_async_request_started_and_finished_receivers(app, http):
    log = []

    async def started(sender, **extra):
        await tick()
        log.append(("started", request.path))

    async def finished(sender, response, **extra):
        await tick()
        log.append(("finished", response.status_code))

    @app.get("/")
    async def index():
        log.append("view")
        return "ok"

    with (
        connected(flask.request_started, started, app),
        connected(flask.request_finished, finished, app),
    ):
        await http.get("/")
    assert log == [("started", "/"), "view", ("finished", 200)]


async def test_async_got_request_exception_receiver(app, http):
    log = []

    async def got_exception(sender, exception, **extra):
        await tick()
        log.append(repr(exception))

    @app.get("/")
    async def index():
        raise RuntimeError("signal me")

    with connected(flask.got_request_exception, got_exception, app):
        assert (await http.get("/")).status_code == 500
    assert log == ["RuntimeError('signal me')"]


async def test_async_message_flashed_receiver(app, http):
    log = []

    async def flashed(sender, message, category, **extra):
        await tick()
        log.append((message, category))

    @app.get("/")
    def index():
        flash("saved", "info")
        return "ok"

    with connected(flask.message_flashed, flashed, app):
        await http.get("/")
    assert log == [("saved", "info")]


async def test_async_message_flashed_receiver_with_flash_in_async_view(app, http):
    log = []

    async def flashed(sender, message, category, **extra):
        log.append((message, category))

    @app.get("/")
    async def index():
        await tick()
        flash("saved", "info")
        return "ok"

    with connected(flask.message_flashed, flashed, app):
        assert (await http.get("/")).status_code == 200
    assert log == [("saved", "info")]


async def test_flash_in_async_view_with_sync_receiver(app, http):
    log = []

    def flashed(sender, message, category, **extra):
        log.append(message)

    @app.get("/flash")
    async def do_flash():
        await tick()
        flash("hello")
        return "ok"

    @app.get("/read")
    async def read():
        return ",".join(aioflask.get_flashed_messages())

    with connected(flask.message_flashed, flashed, app):
        await http.get("/flash")
    assert log == ["hello"]
    assert (await http.get("/read")).text == "hello"


async def test_async_context_signal_receivers(app, http):
    log = []

    async def pushed(sender, **extra):
        await tick()
        log.append("appcontext_pushed")

    async def request_tearing_down(sender, exc, **extra):
        await tick()
        log.append("request_tearing_down")

    async def app_tearing_down(sender, exc, **extra):
        await tick()
        log.append("appcontext_tearing_down")

    async def popped(sender, **extra):
        await tick()
        log.append("appcontext_popped")

    @app.get("/")
    async def index():
        return "ok"

    with (
        connected(flask.appcontext_pushed, pushed, app),
        connected(flask.request_tearing_down, request_tearing_down, app),
        connected(flask.appcontext_tearing_down, app_tearing_down, app),
        connected(flask.appcontext_popped, popped, app),
    ):
        await http.get("/")
    assert log == [
        "appcontext_pushed",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]


# copy_current_request_context


async def test_copy_current_request_context_on_async_function(app, http):
    async def work(suffix):
        await tick()
        return request.path + suffix

    @app.get("/sync")
    def sync_view():
        return copy_current_request_context(work)("!")

    @app.get("/thread")
    async def thread_view():
        wrapped = copy_current_request_context(work)
        # Called later in a worker thread: it awaits on the loop.
        return await aioflask.run_in_thread(wrapped, "?")

    assert (await http.get("/sync")).text == "/sync!"
    assert (await http.get("/thread")).text == "/thread?"


async def test_copy_current_request_context_called_in_async_view(app, http):
    async def work():
        return request.path

    @app.get("/")
    async def index():
        return copy_current_request_context(work)()

    assert (await http.get("/")).text == "/"


# URL processors stay sync


async def test_url_processors_with_async_view(app, http):
    @app.url_value_preprocessor
    def pull_lang(endpoint, values):
        g.lang = values.pop("lang", None)

    @app.url_defaults
    def add_lang(endpoint, values):
        if "lang" in values or not g.get("lang"):
            return
        if app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values["lang"] = g.lang

    @app.get("/<lang>/page")
    async def page():
        await tick()
        return f"{g.lang} {aioflask.url_for('page')}"

    assert (await http.get("/fr/page")).text == "fr /fr/page"


# Streaming bodies


async def numbers(n, log=None):
    try:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"{i};"
    finally:
        if log is not None:
            log.append("closed")


async def test_async_view_returning_async_generator_streams(app):
    log = []

    @app.get("/")
    async def index():
        await tick()
        return numbers(3, log)

    exchange = await call(app, http_scope())
    assert exchange.status == 200
    assert "content-length" not in exchange.headers
    assert [m["body"] for m in exchange.bodies] == [b"0;", b"1;", b"2;", b""]
    assert log == ["closed"]


async def test_sync_view_returning_async_generator(app, http):
    @app.get("/")
    def index():
        return numbers(2)

    assert (await http.get("/")).text == "0;1;"


async def test_async_generator_in_tuple_with_status_and_headers(app, http):
    @app.get("/")
    async def index():
        return numbers(2), 201, {"X-Stream": "yes"}

    response = await http.get("/")
    assert response.status_code == 201
    assert response.headers["x-stream"] == "yes"
    assert response.text == "0;1;"


async def test_response_with_async_generator(app, http):
    @app.get("/")
    async def index():
        return aioflask.Response(numbers(3), mimetype="text/plain")

    response = await http.get("/")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "0;1;2;"


async def test_make_response_with_async_generator(app, http):
    @app.get("/")
    async def index():
        response = aioflask.make_response(numbers(2))
        response.headers["X-Made"] = "1"
        return response

    response = await http.get("/")
    assert response.text == "0;1;"
    assert response.headers["x-made"] == "1"


async def test_stream_with_context_async_generator_sees_request(app, http):
    @app.get("/wrapped")
    async def wrapped():
        async def generate():
            await tick()
            yield request.args["name"]
            await tick()
            yield f" {request.path}"

        return aioflask.stream_with_context(generate())

    @app.get("/decorated")
    def decorated():
        @aioflask.stream_with_context
        async def generate(greeting):
            await tick()
            yield f"{greeting} {request.args['name']}"

        return generate("hi")

    assert (await http.get("/wrapped?name=ann")).text == "ann /wrapped"
    assert (await http.get("/decorated?name=ben")).text == "hi ben"


async def test_stream_with_context_sync_generator(app, http):
    @app.get("/")
    async def index():
        def generate():
            yield request.args["name"]
            yield aioflask.await_(asyncio.sleep(0, "!"))

        return aioflask.stream_with_context(generate())

    assert (await http.get("/?name=cy")).text == "cy!"


async def test_async_generator_error_midway_propagates_after_start(app):
    async def failing():
        yield "first"
        raise RuntimeError("stream failed")

    @app.get("/")
    async def index():
        return failing()

    exchange = Exchange()
    with pytest.raises(RuntimeError, match="stream failed"):
        await call(app, http_scope(), exchange)
    assert exchange.status == 200
    assert exchange.body == b"first"


# g and session across awaits


async def test_g_and_session_across_awaits(app):
    @app.get("/set")
    async def set_value():
        g.value = "g value"
        session["count"] = session.get("count", 0) + 1
        await asyncio.sleep(0.01)
        await tick()
        return f"{g.value} {session['count']}"

    @app.get("/get")
    async def get_value():
        await tick()
        return str(session.get("count"))

    async with asgi_client(app) as http:
        assert (await http.get("/set")).text == "g value 1"
        assert (await http.get("/set")).text == "g value 2"
        assert (await http.get("/get")).text == "2"


async def test_contexts_are_isolated_between_concurrent_requests(app, http):
    @app.get("/<name>")
    async def index(name):
        g.name = name
        session["name"] = name
        await asyncio.sleep(0.01)
        return f"{g.name} {session['name']} {request.path}"

    responses = await asyncio.gather(*(http.get(f"/{i}") for i in range(20)))
    assert [r.text for r in responses] == [f"{i} {i} /{i}" for i in range(20)]


# Concurrency


async def test_requests_are_not_serialized(app, http):
    first, second = asyncio.Event(), asyncio.Event()

    @app.get("/first")
    async def one():
        first.set()
        await second.wait()
        return "first done"

    @app.get("/second")
    def two():
        second.set()
        aioflask.await_(first.wait())
        return "second done"

    responses = await asyncio.wait_for(asyncio.gather(http.get("/first"), http.get("/second")), 5)
    assert [r.text for r in responses] == ["first done", "second done"]


async def test_many_concurrent_requests_without_threads(app, http):
    gate = asyncio.Event()
    waiting = 0

    @app.get("/")
    async def index():
        nonlocal waiting
        waiting += 1
        if waiting == 100:
            gate.set()
        await gate.wait()
        return "ok"

    threads_before = threading.active_count()
    responses = await asyncio.wait_for(asyncio.gather(*(http.get("/") for _ in range(100))), 10)
    assert all(r.text == "ok" for r in responses)
    assert threading.active_count() <= threads_before  # none started (old pools may exit)


# WSGI mode: Flask's own test client drives app.wsgi_app


def wsgi_client(app):
    return flask.testing.FlaskClient(app, app.response_class, use_cookies=True)


def test_wsgi_test_client_sync_view():
    app = aioflask.Flask(__name__)

    @app.get("/")
    def index():
        return "sync over wsgi"

    response = wsgi_client(app).get("/")
    assert response.status_code == 200
    assert response.text == "sync over wsgi"


def test_wsgi_test_client_async_view_and_hooks():
    app = aioflask.Flask(__name__)
    log = []

    @app.before_request
    async def before():
        await tick()
        g.x = "x"

    @app.teardown_request
    async def teardown(exc):
        log.append("teardown")

    @app.get("/")
    async def index():
        await asyncio.sleep(0)
        return f"async over wsgi {g.x} {asyncio.get_running_loop() is not None}"

    @app.post("/json")
    async def post_json():
        return {"got": request.get_json()}

    client = wsgi_client(app)
    assert client.get("/").text == "async over wsgi x True"
    assert client.get("/").text == "async over wsgi x True"
    assert client.post("/json", json={"a": 1}).json == {"got": {"a": 1}}
    assert log == ["teardown"] * 3


def test_wsgi_test_client_async_generator():
    app = aioflask.Flask(__name__)

    @app.get("/")
    async def index():
        return numbers(3)

    assert wsgi_client(app).get("/").text == "0;1;2;"


def test_wsgi_call_directly():
    app = aioflask.Flask(__name__)

    @app.get("/hello")
    async def hello():
        return f"hello {request.args['name']}"

    environ = werkzeug.test.create_environ("/hello?name=wsgi")
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append((status, dict(headers)))

    body = b"".join(app(environ, start_response))
    assert body == b"hello wsgi"
    assert statuses[0][0] == "200 OK"
    assert statuses[0][1]["Content-Length"] == "10"

    app_iter, status, _headers = werkzeug.test.run_wsgi_app(app, environ)
    assert status == "200 OK"
    assert b"".join(app_iter) == b"hello wsgi"


# Middleware, subclasses, config


async def test_wsgi_middleware_applies_on_the_asgi_path(app, http):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    @app.get("/")
    def index():
        return f"{request.remote_addr} {request.scheme} {request.host}"

    response = await http.get(
        "/",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "example.com",
        },
    )
    assert response.text == "203.0.113.9 https example.com"


async def test_asgi_middleware_can_wrap_asgi_app(app, http):
    inner = app.asgi_app

    async def middleware(scope, receive, send):
        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-mw", b"1")]}
            await send(message)

        await inner(scope, receive, send_wrapper)

    app.asgi_app = middleware

    @app.get("/")
    def index():
        return "ok"

    assert (await http.get("/")).headers["x-mw"] == "1"


async def test_app_subclass():
    class MyApp(aioflask.Flask):
        def process_response(self, response):
            response = super().process_response(response)
            response.headers["X-Subclass"] = type(self).__name__
            return response

    app = MyApp(__name__)
    app.config.from_mapping(GREETING="hi from config")

    @app.get("/")
    async def index():
        await tick()
        return aioflask.current_app.config["GREETING"]

    async with asgi_client(app) as http:
        response = await http.get("/")
    assert response.text == "hi from config"
    assert response.headers["x-subclass"] == "MyApp"


def test_config_defaults():
    app = aioflask.Flask(__name__)
    assert app.config["AIOFLASK_SYNC_IN_THREAD"] is False
    assert "AIOFLASK_SYNC_IN_THREAD" not in flask.Flask.default_config
    flask_config = flask.Flask(__name__).config
    for key, value in flask_config.items():
        assert app.config[key] == value, key
    assert isinstance(app, flask.Flask)
    assert app.response_class is aioflask.Response


def test_call_is_detected_as_asgi3_by_servers():
    app = aioflask.Flask(__name__)
    assert asyncio.iscoroutinefunction(app.__call__)
    config = uvicorn.Config(app, interface="auto", log_config=None)
    config.load()
    assert config.interface == "asgi3"


# Other scope types


async def test_websocket_scope_is_rejected(app):
    exchange = Exchange([{"type": "websocket.connect"}])
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "scheme": "ws",
        "subprotocols": [],
    }
    await app(scope, exchange.receive, exchange.send)
    assert exchange.receives == 1
    assert len(exchange.sent) == 1
    assert exchange.sent[0]["type"] == "websocket.close"


async def test_unknown_scope_type_raises(app):
    exchange = Exchange([])
    with pytest.raises(ValueError, match="type 'telepathy': it serves 'http', 'websocket' and"):
        await app({"type": "telepathy"}, exchange.receive, exchange.send)
    assert exchange.sent == []


async def test_httpx_transport_round_trip(app):
    # The whole stack through httpx, headers and body both ways.
    @app.post("/echo")
    def echo():
        return request.get_data(), 200, {"X-Len": str(request.content_length)}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.post("/echo", content=b"payload")
    assert response.content == b"payload"
    assert response.headers["x-len"] == "7"


async def test_each_scope_is_served_by_the_apps_connection_class(app):
    from aioflask.core.http import HTTPConnection, HTTPState
    from aioflask.core.lifespan import LifespanConnection, LifespanState

    seen = []

    class Recording(HTTPConnection):
        async def __call__(self) -> None:
            await super().__call__()
            seen.append(self.state)

    class Lifespan(LifespanConnection):
        async def __call__(self) -> None:
            await super().__call__()
            seen.append(self.state)

    app.asgi_http_class = Recording
    app.asgi_lifespan_class = Lifespan
    order = []
    app.before_serving(lambda: order.append("hook"))

    @app.get("/")
    def index():
        return "ok"

    exchange = Exchange([])
    await call(app, http_scope(), exchange)
    assert seen == [HTTPState.DONE]

    messages = asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
        messages.put_nowait(message)
    sent = []

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan"}, messages.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert order == ["hook"]
    assert seen[-1] is LifespanState.ENDED


async def test_a_client_gone_mid_stream_leaves_the_connection_disconnected(app):
    from aioflask.core.http import ClientDisconnected, HTTPConnection, HTTPState

    connections = []

    class Recording(HTTPConnection):
        async def __call__(self) -> None:
            connections.append(self)
            await super().__call__()

    app.asgi_http_class = Recording

    @app.get("/")
    def stream():
        def generate():
            yield "first"
            exchange.disconnect()
            while True:
                await_(asyncio.sleep(0))
                yield "more"

        return generate()

    exchange = Exchange([])
    await asyncio.wait_for(call(app, http_scope(), exchange), 5)
    (connection,) = connections
    assert connection.state is HTTPState.DISCONNECTED
    with pytest.raises(ClientDisconnected):
        connection.send({"type": "http.response.body", "body": b"late"})


def test_app_is_freed_at_zero_refcount_and_names_its_cli() -> None:
    import gc
    import weakref

    gc.disable()
    try:
        app = aioflask.Flask("freed")
        assert app.cli.name == "freed"
        ref = weakref.ref(app)
        del app
        assert ref() is None  # no reference cycle: freed without the GC
    finally:
        gc.enable()
