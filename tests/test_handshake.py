"""The WebSocket hooks and signals: before/after/teardown_websocket, on apps and blueprints.

In-process through the test client; tests/test_websockets.py has the
end-to-end run under uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

import flask
import pytest

from aioflask import (
    Blueprint,
    Flask,
    abort,
    after_this_request,
    after_this_websocket,
    g,
    got_request_exception,
    got_websocket_exception,
    has_websocket_context,
    request_finished,
    request_started,
    request_tearing_down,
    run_sync,
    websocket,
    websocket_finished,
    websocket_started,
    websocket_tearing_down,
)
from aioflask.testing import WebSocketRejected

TIMEOUT = 5.0


@pytest.fixture
def client(app: Flask):
    return app.test_client()


async def refusal(client: Any, url: str) -> Any:
    """The response with which the app refuses a WebSocket handshake to ``url``."""
    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket(url):
            pass
    return info.value.response


def status(response: Any) -> Any:
    return None if response is None else response.status_code


@pytest.fixture
def signals(app: Flask):
    """Every request and WebSocket signal the app sends, in order, as (name, detail)."""
    log: list[tuple[str, Any]] = []
    receivers = {
        request_started: lambda sender, **kw: log.append(("request_started", None)),
        websocket_started: lambda sender, **kw: log.append(("websocket_started", None)),
        websocket_finished: lambda sender, response, **kw: log.append(
            ("websocket_finished", status(response))
        ),
        request_finished: lambda sender, response, **kw: log.append(
            ("request_finished", status(response))
        ),
        websocket_tearing_down: lambda sender, exc, **kw: log.append(
            ("websocket_tearing_down", type(exc).__name__ if exc else None)
        ),
        request_tearing_down: lambda sender, exc, **kw: log.append(
            ("request_tearing_down", type(exc).__name__ if exc else None)
        ),
        got_websocket_exception: lambda sender, exception, **kw: log.append(
            ("got_websocket_exception", str(exception))
        ),
        got_request_exception: lambda sender, exception, **kw: log.append(
            ("got_request_exception", str(exception))
        ),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, app)
    yield log
    for signal, receiver in receivers.items():
        signal.disconnect(receiver, app)


def hooks(scaffold: Flask | Blueprint, log: list[Any], name: str) -> None:
    """Register every request and WebSocket hook on ``scaffold``, sync and async alike."""

    @scaffold.before_request
    def before_request() -> None:
        log.append(("before_request", name))

    @scaffold.before_websocket
    async def before_websocket() -> None:
        await asyncio.sleep(0)
        log.append(("before_websocket", name))

    @scaffold.after_websocket
    def after_websocket(response: Any) -> Any:
        log.append(("after_websocket", name, status(response)))
        return response

    @scaffold.after_request
    async def after_request(response: Any) -> Any:
        log.append(("after_request", name, response.status_code))
        return response

    @scaffold.teardown_websocket
    async def teardown_websocket(exc: BaseException | None) -> None:
        log.append(("teardown_websocket", name, type(exc).__name__ if exc else None))

    @scaffold.teardown_request
    def teardown_request(exc: BaseException | None) -> None:
        log.append(("teardown_request", name, type(exc).__name__ if exc else None))


async def test_the_order_of_hooks_and_signals(app, client, signals):
    bp = Blueprint("bp", __name__)
    hooks(app, signals, "app")
    hooks(bp, signals, "bp")

    @bp.websocket("/ws")
    async def handler():
        @after_this_websocket
        def once(response: Any) -> Any:
            signals.append(("after_this_websocket", status(response)))
            return response

        @after_this_request
        def once_http(response: Any) -> Any:
            signals.append(("after_this_request", response.status_code))
            return response

        await websocket.accept()
        signals.append(("handler", None))
        await websocket.send("hi")

    app.register_blueprint(bp)
    async with client.websocket("/ws") as ws:
        assert await asyncio.wait_for(ws.receive(), TIMEOUT) == "hi"

    assert signals == [
        ("request_started", None),
        ("before_request", "app"),
        ("before_request", "bp"),
        ("websocket_started", None),
        ("before_websocket", "app"),
        ("before_websocket", "bp"),
        ("handler", None),
        ("after_this_websocket", None),
        ("after_websocket", "bp", None),
        ("after_websocket", "app", None),
        ("websocket_finished", None),
        ("after_this_request", 101),
        ("after_request", "bp", 101),
        ("after_request", "app", 101),
        ("request_finished", 101),
        ("teardown_websocket", "bp", None),
        ("teardown_websocket", "app", None),
        ("websocket_tearing_down", None),
        ("teardown_request", "bp", None),
        ("teardown_request", "app", None),
        ("request_tearing_down", None),
    ]


#: What ``hooks()`` and ``signals`` record for a request that runs no WebSocket hook.
REQUEST_ONLY = [
    "request_started",
    "before_request",
    "after_request",
    "request_finished",
    "teardown_request",
    "request_tearing_down",
]


async def test_http_requests_run_no_websocket_hooks(app, client, signals):
    hooks(app, signals, "app")

    @app.get("/")
    def index() -> str:
        return "ok"

    assert (await client.get("/")).data == b"ok"
    assert [entry[0] for entry in signals] == REQUEST_ONLY


async def test_before_websocket_refuses_the_handshake(app, client):
    log = []

    @app.before_websocket
    def check() -> Any:
        if websocket.args.get("token") != "secret":
            return {"error": "bad token"}, 401
        return None

    @app.before_websocket
    def never() -> None:
        log.append("second hook")

    @app.after_websocket
    def after(response: Any) -> Any:
        log.append(("after", status(response)))
        if response is not None:
            response.headers["X-Refused"] = "yes"
        return response

    @app.websocket("/ws")
    async def handler():
        log.append("handler")
        await websocket.accept()

    response = await refusal(client, "/ws?token=wrong")
    assert (response.status_code, response.json) == (401, {"error": "bad token"})
    assert response.headers["X-Refused"] == "yes"
    assert log == [("after", 401)]
    log.clear()
    async with client.websocket("/ws?token=secret"):
        pass
    assert log == ["second hook", "handler", ("after", None)]


async def test_after_websocket_may_replace_a_refusal(app, client):
    @app.after_websocket
    def after(response: Any) -> Any:
        return flask.make_response(("replaced", 418)) if response is not None else None

    @app.websocket("/ws")
    async def handler():
        return "refused", 403

    response = await refusal(client, "/ws")
    assert (response.status_code, response.data) == (418, b"replaced")


async def test_after_websocket_returning_none_for_a_refusal_is_an_error(app, client, caplog):
    app.after_websocket(lambda response: None)

    @app.websocket("/ws")
    async def handler():
        abort(403)

    response = await refusal(client, "/ws")
    assert response.status_code == 500
    assert "returned None for a refused handshake" in caplog.text


async def test_an_error_in_the_handler(app, client, signals, caplog):
    hooks(app, signals, "app")

    @app.websocket("/ws")
    async def handler():
        await websocket.accept()
        raise RuntimeError("boom")

    async with client.websocket("/ws") as ws:
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ws.receive(), TIMEOUT)
    assert getattr(info.value, "code", None) == 1011
    names = [entry[:2] for entry in signals]
    assert names.index(("got_websocket_exception", "boom")) < names.index(
        ("got_request_exception", "boom")
    )
    assert ("after_websocket", "app", None) in signals  # accepted: no response to show
    assert ("after_request", "app", 500) in signals
    assert ("teardown_websocket", "app", "RuntimeError") in signals
    assert ("websocket_tearing_down", "RuntimeError") in signals
    assert "RuntimeError: boom" in caplog.text


async def test_an_error_before_accept_gives_after_websocket_the_500(app, client, signals, caplog):
    hooks(app, signals, "app")

    @app.websocket("/ws")
    async def handler():
        raise RuntimeError("early")

    response = await refusal(client, "/ws")
    assert response.status_code == 500
    assert ("after_websocket", "app", 500) in signals
    assert ("websocket_finished", 500) in signals
    assert ("teardown_websocket", "app", "RuntimeError") in signals


async def test_an_error_handler_answers_before_after_websocket(app, client, signals):
    hooks(app, signals, "app")

    @app.errorhandler(LookupError)
    def lookup(e: Exception) -> Any:
        return "not here", 404

    @app.websocket("/ws")
    async def handler():
        raise LookupError("gone")

    response = await refusal(client, "/ws")
    assert response.status_code == 404
    assert ("after_websocket", "app", 404) in signals
    assert ("teardown_websocket", "app", None) in signals
    assert not [s for s in signals if s[0] == "got_websocket_exception"]


async def test_teardown_websocket_sees_a_disconnect(app, client):
    log = []

    @app.teardown_websocket
    def teardown(exc: BaseException | None) -> None:
        log.append(type(exc).__name__)

    @app.teardown_websocket
    async def async_teardown(exc: BaseException | None) -> None:
        await asyncio.sleep(0)  # awaits, though the handler was cancelled
        log.append(f"async {type(exc).__name__}")

    @app.websocket("/ws")
    async def handler():
        await websocket.accept()
        await asyncio.sleep(3600)

    async with client.websocket("/ws") as ws:
        await ws.send("x")
        await asyncio.sleep(0.01)
    assert log == ["async CancelledError", "CancelledError"]


async def test_blueprint_hooks_are_scoped(app, client):
    log: list[Any] = []
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")
    other = Blueprint("other", __name__, url_prefix="/o")
    for scaffold, name in ((app, "app"), (parent, "parent"), (child, "child"), (other, "other")):
        scaffold.before_websocket(lambda name=name: log.append(("before", name)))
        scaffold.after_websocket(lambda r, name=name: log.append(("after", name)) or r)
        scaffold.teardown_websocket(lambda e, name=name: log.append(("teardown", name)))
    other.before_app_websocket(lambda: log.append(("before", "other for the app")))
    other.after_app_websocket(lambda r: log.append(("after", "other for the app")) or r)
    other.teardown_app_websocket(lambda e: log.append(("teardown", "other for the app")))

    @child.websocket("/ws")
    async def nested():
        await websocket.accept()
        log.append(("handler", websocket.blueprints))

    @app.websocket("/ws")
    async def top():
        await websocket.accept()
        log.append(("handler", websocket.blueprints))

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    app.register_blueprint(other)

    async with client.websocket("/p/c/ws"):
        pass
    assert log == [
        ("before", "app"),
        ("before", "other for the app"),
        ("before", "parent"),
        ("before", "child"),
        ("handler", ["parent.child", "parent"]),
        ("after", "child"),
        ("after", "parent"),
        ("after", "other for the app"),
        ("after", "app"),
        ("teardown", "child"),
        ("teardown", "parent"),
        ("teardown", "other for the app"),
        ("teardown", "app"),
    ]
    log.clear()
    async with client.websocket("/ws"):
        pass
    assert [entry[1] for entry in log if entry[0] != "handler"] == [
        "app",
        "other for the app",
        "other for the app",
        "app",
        "other for the app",
        "app",
    ]


async def test_a_blueprint_registered_twice_keeps_its_hooks_per_name(app, client):
    log = []
    bp = Blueprint("bp", __name__)
    bp.before_websocket(lambda: log.append(flask.request.blueprint))

    @bp.websocket("/ws")
    async def handler():
        await websocket.accept()

    app.register_blueprint(bp, url_prefix="/one")
    app.register_blueprint(bp, url_prefix="/two", name="two")
    async with client.websocket("/one/ws"):
        pass
    async with client.websocket("/two/ws"):
        pass
    assert log == ["bp", "two"]


def test_hooks_return_the_function_and_check_setup(app, client):
    def hook() -> None:
        pass

    assert app.before_websocket(hook) is hook
    assert app.after_websocket(hook) is hook
    assert app.teardown_websocket(hook) is hook
    assert app.before_websocket_funcs[None] == [hook]

    @app.get("/")
    def index() -> str:
        return "ok"

    client.get("/")
    with pytest.raises(AssertionError, match="before_websocket"):
        app.before_websocket(hook)


def test_blueprint_hooks_need_an_aioflask_app():
    bp = Blueprint("bp", __name__)
    bp.before_websocket(lambda: None)
    with pytest.raises(TypeError, match=r"use aioflask\.Flask"):
        flask.Flask(__name__).register_blueprint(bp)


async def test_hooks_see_g_and_the_session(app, client):
    @app.before_websocket
    async def load_user() -> None:
        g.user = websocket.args.get("user", "nobody")

    @app.websocket("/ws")
    async def handler():
        await websocket.send(g.user)

    async with client.websocket("/ws?user=ann") as ws:
        assert await asyncio.wait_for(ws.receive(), TIMEOUT) == "ann"


async def test_an_http_request_context_inside_a_handler_is_no_handshake(app, client):
    log = []
    app.before_websocket(lambda: log.append("before_websocket"))
    app.teardown_websocket(lambda exc: log.append("teardown_websocket"))

    @app.websocket("/ws")
    async def handler():
        async with app.test_request_context("/page"):
            log.append(("nested", has_websocket_context(), bool(websocket)))
            await run_sync(app.preprocess_request)
        log.append(("handler", has_websocket_context()))
        await websocket.accept()

    async with client.websocket("/ws"):
        pass
    assert log == [
        "before_websocket",
        ("nested", False, False),
        ("handler", True),
        "teardown_websocket",
    ]


async def test_websocket_hooks_run_once_the_handshake_reaches_its_route(app, client, signals):
    hooks(app, signals, "app")

    @app.before_request
    def guard() -> None:
        if flask.request.args.get("token") == "bad":
            abort(401)

    @app.websocket("/ws")
    async def handler():
        await websocket.accept()

    for url, status_code in (("/nowhere", 404), ("/ws?token=bad", 401)):
        signals.clear()
        response = await refusal(client, url)
        assert response.status_code == status_code
        assert [entry[0] for entry in signals] == REQUEST_ONLY
