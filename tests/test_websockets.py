"""WebSockets: routes, the ``websocket`` proxy, the handshake as a Flask request.

In-process through the test client (``client.websocket()``) and a raw ASGI
driver, then under a real uvicorn with the ``websockets`` client library.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections.abc import Callable
from typing import Any

import flask.testing
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import aioflask
from _uvicorn import UvicornProcess
from aioflask import (
    Blueprint,
    Flask,
    WebSocketClosed,
    abort,
    after_this_request,
    after_this_websocket,
    await_,
    copy_current_websocket_context,
    g,
    has_request_context,
    has_websocket_context,
    in_thread,
    request,
    run_sync,
    session,
    url_for,
    websocket,
)
from aioflask.testing import WebSocketRejected

TIMEOUT = 5.0


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test"
    return app


@pytest.fixture
def client(app: Flask):
    return app.test_client()


async def receive(ws: Any) -> Any:
    """The next message, failing instead of hanging."""
    return await asyncio.wait_for(ws.receive(), TIMEOUT)


async def until(check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


# -- messages --------------------------------------------------------------------------


async def test_echo_text_and_bytes(app, client):
    @app.websocket("/echo")
    async def echo():
        await websocket.accept()
        while True:
            message = await websocket.receive()
            await websocket.send(message)

    async with client.websocket("/echo") as ws:
        await ws.send("héllo")
        assert await receive(ws) == "héllo"
        await ws.send(b"\x00\xff")
        assert await receive(ws) == b"\x00\xff"
        await ws.send("")
        assert await receive(ws) == ""


async def test_json_and_async_iteration(app, client):
    @app.websocket("/sum")
    async def total():
        await websocket.accept()
        n = 0
        async for message in websocket:
            n += aioflask.json.loads(message)["add"]
            await websocket.send_json({"total": n})

    async with client.websocket("/sum") as ws:
        for i, total in ((1, 1), (2, 3), (3, 6)):
            await ws.send_json({"add": i})
            assert await ws.receive_json() == {"total": total}
        await ws.send_json({"add": 10})
        assert await ws.receive_json() == {"total": 16}


async def test_send_takes_str_or_bytes(app, client):
    errors = []

    @app.websocket("/bad")
    async def bad():
        await websocket.accept()
        try:
            await websocket.send({"not": "text"})  # type: ignore[arg-type]
        except TypeError as exc:
            errors.append(str(exc))
        await websocket.send(bytearray(b"ok"))

    async with client.websocket("/bad") as ws:
        assert await receive(ws) == b"ok"
    assert errors and "send_json" in errors[0]


async def test_send_and_receive_accept_first(app, client):
    @app.websocket("/lazy")
    async def lazy():
        await websocket.send("accepted by send")
        await websocket.receive()

    async with client.websocket("/lazy") as ws:
        assert await receive(ws) == "accepted by send"


async def test_app_closes_with_code_and_reason(app, client):
    after = []

    @app.websocket("/bye")
    async def bye():
        await websocket.accept()
        await websocket.close(4000, "go away")
        await websocket.close()  # again: nothing happens
        with pytest.raises(WebSocketClosed) as info:
            await websocket.send("too late")
        after.append((info.value.code, info.value.reason, websocket.closed))
        with pytest.raises(WebSocketClosed):
            await websocket.receive()

    async with client.websocket("/bye") as ws:
        with pytest.raises(WebSocketClosed) as info:
            await receive(ws)
        assert (info.value.code, info.value.reason) == (4000, "go away")
        assert ws.close_code == 4000
        with pytest.raises(WebSocketClosed):
            await ws.send("x")
    assert after == [(4000, "go away", True)]


async def test_iteration_ends_when_the_app_closes(app, client):
    @app.websocket("/three")
    async def three():
        await websocket.accept()
        for i in range(3):
            await websocket.send(str(i))
        await websocket.close()

    async with client.websocket("/three") as ws:
        assert [m async for m in ws] == ["0", "1", "2"]


# -- sync handlers ------------------------------------------------------------------


async def test_sync_handler_runs_on_the_loop_thread(app, client):
    loop_thread = threading.get_ident()
    seen = []

    @app.websocket("/sync/<int:n>")
    def sync_handler(n):
        seen.append((threading.get_ident() == loop_thread, aioflask.bridge.in_bridge()))
        websocket.accept()
        for message in websocket:
            await_(asyncio.sleep(0))
            websocket.send_json({"n": n, "got": message})
            if message == "stop":
                websocket.close(4001)

    async with client.websocket("/sync/7") as ws:
        await ws.send("a")
        assert await ws.receive_json() == {"n": 7, "got": "a"}
        await ws.send("stop")
        assert await ws.receive_json() == {"n": 7, "got": "stop"}
        with pytest.raises(WebSocketClosed) as info:
            await receive(ws)
        assert info.value.code == 4001
    assert seen == [(True, True)]


async def test_sync_handler_in_a_thread(app, client):
    loop_thread = threading.get_ident()
    threads = []

    @app.websocket("/blocking")
    @in_thread
    def blocking():
        threads.append(threading.get_ident())
        websocket.accept()
        websocket.send(websocket.receive().upper())

    async with client.websocket("/blocking") as ws:
        await ws.send("quiet")
        assert await receive(ws) == "QUIET"
    assert threads and threads[0] != loop_thread


async def test_comprehension_in_an_async_handler(app, client):
    # Python 3.12 inlines comprehensions (PEP 709): whether send() returns a
    # coroutine must not depend on the frame it is called from.
    @app.websocket("/many")
    async def many():
        await websocket.accept()
        sends = [websocket.send(m) for m in ("a", "b", "c")]
        for send in sends:
            await send
        sync_sends = [websocket.sync.send(m) for m in ("d", "e")]
        await websocket.send(f"sync face returned {sync_sends}")

    async with client.websocket("/many") as ws:
        got = [await receive(ws) for _ in range(6)]
    assert got == ["a", "b", "c", "d", "e", "sync face returned [None, None]"]


async def test_sync_helper_of_an_async_handler_uses_the_sync_face(app, client):
    def helper(ws):
        ws.send(ws.receive().upper())

    @app.websocket("/helper")
    async def handler():
        await websocket.accept()
        await run_sync(helper, websocket.sync)

    async with client.websocket("/helper") as ws:
        await ws.send("up")
        assert await receive(ws) == "UP"


async def test_async_iteration_is_for_async_code(app, client):
    errors = []

    @app.websocket("/iter")
    async def it():
        await websocket.accept()
        try:
            iter(websocket._get_current_object())
            next(iter(websocket._get_current_object()))
        except TypeError as exc:
            errors.append(str(exc))
        await websocket.send("done")

    async with client.websocket("/iter") as ws:
        assert await receive(ws) == "done"
    assert errors and "async for" in errors[0]


# -- the handshake -----------------------------------------------------------------


async def test_converters_and_url_for(app, client):
    @app.get("/page")
    def page():
        return "page"

    @app.websocket("/ws/<room>/<int:n>")
    async def room(room, n):
        await websocket.send_json(
            {
                "room": room,
                "n": n,
                "self": url_for("room", room="b", n=2),
                "page": url_for("page", _external=True),
                "scheme": request.scheme,
                "path": request.path,
                "args": request.args.to_dict(),
                "header": request.headers.get("X-Test"),
            }
        )

    async with client.websocket("/ws/lobby/3?x=y", headers={"X-Test": "hi"}) as ws:
        assert await ws.receive_json() == {
            "room": "lobby",
            "n": 3,
            "self": "ws://localhost/ws/b/2",
            "page": "http://localhost/page",
            "scheme": "ws",
            "path": "/ws/lobby/3",
            "args": {"x": "y"},
            "header": "hi",
        }
    with app.test_request_context():
        assert url_for("room", room="a", n=1) == "ws://localhost/ws/a/1"


async def test_subprotocols_and_accept_headers(app, client):
    offered = []

    @app.websocket("/proto")
    async def proto():
        offered.append(websocket.subprotocols)
        await websocket.accept(subprotocol="v2", headers={"X-Server": "aioflask"})
        await websocket.send("hi")

    async with client.websocket("/proto", subprotocols=["v1", "v2"]) as ws:
        assert ws.subprotocol == "v2"
        assert ws.headers["X-Server"] == "aioflask"
        assert await receive(ws) == "hi"
    assert offered == [["v1", "v2"]]


async def test_subprotocol_must_be_offered(app, client, caplog):
    @app.websocket("/proto")
    async def proto():
        await websocket.accept(subprotocol="v3")

    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/proto", subprotocols=["v1"]):
            pass
    assert info.value.response.status_code == 500
    assert "did not offer the subprotocol 'v3'" in caplog.text


async def test_accept_twice_is_an_error(app, client):
    errors = []

    @app.websocket("/twice")
    async def twice():
        await websocket.accept()
        try:
            await websocket.accept()
        except RuntimeError as exc:
            errors.append(str(exc))
        await websocket.send("ok")

    async with client.websocket("/twice") as ws:
        assert await receive(ws) == "ok"
    assert errors == ["The WebSocket connection is already accepted."]


async def test_hooks_run_for_the_handshake(app, client):
    log = []

    @app.url_value_preprocessor
    def pre(endpoint, values):
        log.append(("preprocess", endpoint, dict(values or {})))

    @app.before_request
    async def before():
        g.user = "alice"
        log.append(("before", bool(websocket)))

    @app.after_request
    def after(response):
        log.append(("after", response.status_code))
        response.headers["X-Lost"] = "the handshake is already answered"
        return response

    @app.teardown_request
    async def teardown(exc):
        log.append(("teardown", exc))

    @app.websocket("/ws/<room>")
    async def room(room):
        @after_this_request
        def once(response):
            log.append(("after_this_request", response.status_code))
            return response

        await websocket.accept()
        log.append(("handler", g.user))
        await websocket.send(g.user)

    @app.get("/http")
    def http():
        return "plain"

    async with client.websocket("/ws/lobby") as ws:
        assert await receive(ws) == "alice"
        assert "X-Lost" not in ws.headers
    assert log == [
        ("preprocess", "room", {"room": "lobby"}),
        ("before", True),
        ("handler", "alice"),
        ("after_this_request", 101),
        ("after", 101),
        ("teardown", None),
    ]
    log.clear()
    assert (await client.get("/http")).data == b"plain"
    assert ("before", False) in log


async def test_before_request_refuses_the_handshake(app, client):
    handled = []

    @app.before_request
    def check_token():
        if request.args.get("token") != "secret":
            abort(401)

    @app.websocket("/private")
    async def private():
        handled.append(True)
        await websocket.accept()

    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/private?token=wrong"):
            pass
    assert info.value.response.status_code == 401
    assert b"Unauthorized" in info.value.response.data
    assert handled == []
    async with client.websocket("/private?token=secret"):
        pass
    assert handled == [True]


async def test_handler_refuses_with_a_response(app, client):
    seen = []

    @app.after_request
    def after(response):
        seen.append(response.status_code)
        return response

    @app.websocket("/teapot")
    async def teapot():
        return {"error": "no tea"}, 418, {"X-Why": "teapot"}

    @app.websocket("/none")
    def none():
        return None

    @app.websocket("/closed")
    async def closed():
        await websocket.close()
        return "ignored"

    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/teapot"):
            pass
    response = info.value.response
    assert (response.status_code, response.json, response.headers["X-Why"]) == (
        418,
        {"error": "no tea"},
        "teapot",
    )
    for path in ("/none", "/closed"):
        with pytest.raises(WebSocketRejected) as info:
            async with client.websocket(path):
                pass
        assert info.value.response.status_code == 403
    assert seen == [418, 403, 403]


async def test_unknown_routes_and_mismatches(app, client):
    @app.get("/http-only")
    def http_only():
        return "http"

    @app.websocket("/ws-only")
    async def ws_only():
        await websocket.accept()

    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/nowhere"):
            pass
    assert info.value.response.status_code == 404
    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/http-only"):
            pass
    assert info.value.response.status_code == 400  # Werkzeug's WebsocketMismatch
    assert (await client.get("/ws-only")).status_code == 400


async def test_error_handler_answers_a_refusal(app, client):
    @app.errorhandler(404)
    def not_found(error):
        return {"missing": request.path}, 404

    with pytest.raises(WebSocketRejected) as info:
        async with client.websocket("/nowhere"):
            pass
    assert info.value.response.json == {"missing": "/nowhere"}


async def test_session_is_read_and_saved_at_accept(app, client):
    @app.post("/login/<name>")
    def login(name):
        session["user"] = name
        return "ok"

    @app.websocket("/me")
    async def me():
        user = session.get("user")
        session["visits"] = session.get("visits", 0) + 1
        await websocket.accept()
        session["after_accept"] = "not saved"
        await websocket.send_json({"user": user, "visits": session["visits"]})

    await client.post("/login/alice")
    async with client.websocket("/me") as ws:
        assert await ws.receive_json() == {"user": "alice", "visits": 1}
    async with client.websocket("/me") as ws:
        assert await ws.receive_json() == {"user": "alice", "visits": 2}
    async with client.session_transaction() as saved:
        assert dict(saved) == {"user": "alice", "visits": 2}


def request_attributes(ws: Any) -> dict[str, Any]:
    """What a Quart user reads on ``websocket``, as JSON."""
    return {
        "args": ws.args.to_dict(),
        "header": ws.headers.get("X-Test"),
        "cookie": ws.cookies.get("flavour"),
        "path": ws.path,
        "full_path": ws.full_path,
        "url": ws.url,
        "base_url": ws.base_url,
        "host": ws.host,
        "scheme": ws.scheme,
        "query_string": ws.query_string.decode(),
        "method": ws.method,
        "endpoint": ws.endpoint,
        "view_args": ws.view_args,
        "subprotocols": ws.subprotocols,
        "requested_subprotocols": ws.requested_subprotocols,
    }


EXPECTED_ATTRIBUTES = {
    "args": {"x": "y"},
    "header": "hi",
    "cookie": "mint",
    "path": "/info/3",
    "full_path": "/info/3?x=y",
    "url": "ws://localhost/info/3?x=y",
    "base_url": "ws://localhost/info/3",
    "host": "localhost",
    "scheme": "ws",
    "query_string": "x=y",
    "method": "GET",
    "endpoint": "info",
    "view_args": {"n": 3},
    "subprotocols": ["a", "b"],
    "requested_subprotocols": ["a", "b"],
}


@pytest.mark.parametrize("sync", [False, True])
async def test_the_proxy_has_the_handshake_requests_attributes(app, client, sync):
    same = []

    def check_same_objects() -> None:
        same.append(
            websocket.args is request.args
            and websocket.headers is request.headers
            and websocket.request is request._get_current_object()  # type: ignore[attr-defined]
        )

    @app.before_request
    def before() -> None:
        check_same_objects()

    if sync:

        @app.websocket("/info/<int:n>")
        def info(n):
            check_same_objects()
            websocket.send_json(request_attributes(websocket))

    else:

        @app.websocket("/info/<int:n>")
        async def info(n):
            check_same_objects()
            await websocket.send_json(request_attributes(websocket))

    client.set_cookie("flavour", "mint")
    async with client.websocket(
        "/info/3?x=y", headers={"X-Test": "hi"}, subprotocols=["a", "b"]
    ) as ws:
        assert await ws.receive_json() == EXPECTED_ATTRIBUTES
    assert same == [True, True]


async def test_the_proxy_names_what_it_lacks(app, client):
    errors = []

    @app.websocket("/ws")
    async def handler():
        for name in ("no_such_thing", "_private"):
            try:
                getattr(websocket, name)
            except AttributeError as exc:
                errors.append(str(exc))
        await websocket.accept()

    async with client.websocket("/ws"):
        pass
    assert errors == [
        "'WebSocket' object has no attribute 'no_such_thing'",
        "'WebSocket' object has no attribute '_private'",
    ]


async def test_has_websocket_context(app, client):
    seen = []

    @app.websocket("/ws")
    async def handler():
        seen.append(("ws", has_websocket_context(), has_request_context()))
        await websocket.accept()

    @app.get("/")
    def index():
        seen.append(("http", has_websocket_context(), has_request_context()))
        return "ok"

    async with client.websocket("/ws"):
        pass
    await client.get("/")
    assert seen == [("ws", True, True), ("http", False, True)]
    assert not has_websocket_context()


async def test_after_this_websocket_needs_a_websocket(app, client):
    @app.get("/")
    def index():
        with pytest.raises(RuntimeError, match="after_this_request"):
            after_this_websocket(lambda response: response)
        return "ok"

    assert (await client.get("/")).data == b"ok"
    with pytest.raises(RuntimeError, match="WebSocket handshake"):
        after_this_websocket(lambda response: response)


async def test_copy_current_websocket_context_in_a_task(app, client):
    @app.websocket("/ws")
    async def handler():
        await websocket.accept()
        g.name = "pusher"

        @copy_current_websocket_context
        async def push(prefix: str) -> str:
            await websocket.send(f"{prefix} {g.name} {websocket.args['room']}")
            return "pushed"

        @copy_current_websocket_context
        def sync_push() -> str:
            websocket.sync.send(f"sync {websocket.args['room']}")
            return "sync pushed"

        result = await asyncio.create_task(push("task"))  # no context of its own
        await websocket.send(result)
        await websocket.send(await run_sync(sync_push))
        await websocket.send(await sync_push())  # awaitable in a coroutine

    async with client.websocket("/ws?room=lobby") as ws:
        assert await receive(ws) == "task pusher lobby"
        assert await receive(ws) == "pushed"
        assert await receive(ws) == "sync lobby"
        assert await receive(ws) == "sync pushed"
        assert await receive(ws) == "sync lobby"
        assert await receive(ws) == "sync pushed"


async def test_copy_current_websocket_context_needs_a_websocket(app, client):
    @app.get("/")
    def index():
        with pytest.raises(RuntimeError, match="copy_current_websocket_context"):
            copy_current_websocket_context(lambda: None)
        return "ok"

    assert (await client.get("/")).data == b"ok"


async def test_proxy_outside_a_websocket(app, client):
    @app.get("/")
    def index():
        with pytest.raises(RuntimeError, match="outside of a WebSocket"):
            websocket.accept()
        return {"bool": bool(websocket)}

    assert (await client.get("/")).json == {"bool": False}
    assert not websocket
    with pytest.raises(RuntimeError, match="outside of a WebSocket"):
        websocket.subprotocols  # noqa: B018


async def test_blueprint_websocket(app, client):
    bp = Blueprint("chat", __name__, url_prefix="/chat")
    log = []

    @bp.before_request
    def bp_before():
        log.append("bp before")

    @bp.websocket("/<room>")
    async def room(room):
        await websocket.send(
            f"{room} {url_for('chat.room', room='x')} {url_for('.room', room='y')}"
        )

    app.register_blueprint(bp)
    async with client.websocket("/chat/lobby") as ws:
        assert await receive(ws) == "lobby ws://localhost/chat/x ws://localhost/chat/y"
    assert log == ["bp before"]


async def test_one_handler_on_two_rules(app, client):
    @app.websocket("/a", defaults={"which": "a"})
    @app.websocket("/b/<which>")
    async def both(which):
        await websocket.send(which)

    for path, expected in (("/a", "a"), ("/b/c", "c")):
        async with client.websocket(path) as ws:
            assert await receive(ws) == expected


async def test_decorator_returns_the_function(app):
    async def handler():
        pass

    assert app.websocket("/x")(handler) is handler
    assert Blueprint("bp", __name__).websocket("/x")(handler) is handler


# -- the end of a connection ---------------------------------------------------------


async def test_client_disconnect_cancels_the_handler(app, client):
    log = []

    @app.teardown_request
    def teardown(exc):
        log.append(("teardown", type(exc).__name__))

    @app.websocket("/wait")
    async def wait():
        await websocket.accept()
        try:
            await asyncio.sleep(3600)  # not reading: the disconnect still reaches it
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        finally:
            log.append(("finally", websocket.close_code, websocket.close_reason))

    async with client.websocket("/wait") as ws:
        await ws.send("ignored")
        await asyncio.sleep(0.01)
        await ws.close(4002, "leaving")
    assert log == ["cancelled", ("finally", 4002, "leaving"), ("teardown", "CancelledError")]


async def test_client_disconnect_cancels_a_sync_handler(app, client):
    log = []

    @app.websocket("/wait")
    def wait():
        websocket.accept()
        try:
            await_(asyncio.sleep(3600))
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    async with client.websocket("/wait"):
        await asyncio.sleep(0.01)
    assert log == ["cancelled", "finally"]


async def test_handler_can_clean_up_after_a_disconnect(app, client):
    log = []

    @app.websocket("/room")
    async def room():
        await websocket.accept()
        try:
            async for message in websocket:
                log.append(message)
        finally:
            # Awaiting in finally works: the cancellation is delivered once.
            await asyncio.sleep(0.01)
            log.append("left")
            with pytest.raises(WebSocketClosed) as info:
                await websocket.send("nobody there")
            log.append(info.value.code)

    async with client.websocket("/room") as ws:
        await ws.send("hi")
        await until(lambda: log == ["hi"])
    assert log == ["hi", "left", 1000]


@pytest.mark.parametrize(
    ("action", "code"),
    [("return", 1000), ("raise", 1011), ("abort", 1008)],
)
async def test_close_code_when_the_handler_ends(app, client, caplog, action, code):
    @app.websocket("/end")
    async def end():
        await websocket.accept()
        await websocket.receive()
        if action == "raise":
            raise ValueError("handler bug")
        if action == "abort":
            abort(403)

    async with client.websocket("/end") as ws:
        await ws.send("go")
        with pytest.raises(WebSocketClosed) as info:
            await receive(ws)
        assert info.value.code == code
    assert ("handler bug" in caplog.text) == (action == "raise")


async def test_disconnect_seen_by_a_send_from_another_task(app):
    """The server's send fails (client gone): the sender gets WebSocketClosed, the handler ends."""
    log = []

    @app.websocket("/push")
    async def push():
        await websocket.accept()
        ws = websocket._get_current_object()

        async def pusher():
            await asyncio.sleep(0.01)
            try:
                await ws.send("x")
            except WebSocketClosed as exc:
                log.append(("pusher", exc.code))

        task = asyncio.ensure_future(pusher())
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("handler cancelled")
            raise
        finally:
            await task

    sent = []

    async def receive_():
        if not sent:
            sent.append(True)
            return {"type": "websocket.connect"}
        await asyncio.sleep(3600)  # the server never reports the disconnect

    async def send(message):
        if message["type"] == "websocket.send":
            raise OSError("connection lost")

    await asyncio.wait_for(app(websocket_scope("/push"), receive_, send), TIMEOUT)
    assert log == [("pusher", 1006), "handler cancelled"]


async def test_connections_run_concurrently(app, client):
    members: set[Any] = set()

    @app.websocket("/broadcast")
    async def broadcast():
        await websocket.accept()
        me = websocket._get_current_object()
        members.add(me)
        try:
            async for message in websocket:
                for other in list(members):
                    await other.send(message)
        finally:
            members.discard(me)

    async with (
        client.websocket("/broadcast") as a,
        client.websocket("/broadcast") as b,
        client.websocket("/broadcast") as c,
    ):
        await until(lambda: len(members) == 3)
        await a.send("from a")
        assert [await receive(ws) for ws in (a, b, c)] == ["from a"] * 3
        await c.close()
        await until(lambda: len(members) == 2)
        await b.send("from b")
        assert [await receive(ws) for ws in (a, b)] == ["from b"] * 2
    assert members == set()


# -- the raw ASGI protocol --------------------------------------------------------


def websocket_scope(path: str, extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": extensions or {},
        "state": {},
    }


class Server:
    """The server side of a raw ASGI WebSocket connection."""

    def __init__(self, incoming: list[dict[str, Any]]):
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in [{"type": "websocket.connect"}, *incoming]:
            self.incoming.put_nowait(message)
        self.receives = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def test_refusal_without_the_http_response_extension(app):
    """Without ``websocket.http.response``, a refusal is a close before accept: a 403."""
    server = Server([])
    await asyncio.wait_for(app(websocket_scope("/nowhere"), server.receive, server.send), TIMEOUT)
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_refusal_with_the_http_response_extension(app):
    extensions = {"websocket.http.response": {}}
    server = Server([])
    scope = websocket_scope("/nowhere", extensions)
    await asyncio.wait_for(app(scope, server.receive, server.send), TIMEOUT)
    start, body = server.sent
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 404
    assert (b"content-type", b"text/html; charset=utf-8") in start["headers"]
    assert body["type"] == "websocket.http.response.body"
    assert b"Not Found" in body["body"]


async def test_gone_before_the_handshake(app):
    server = Server([])
    server.incoming = asyncio.Queue()
    server.incoming.put_nowait({"type": "websocket.disconnect", "code": 1006})
    await asyncio.wait_for(app(websocket_scope("/x"), server.receive, server.send), TIMEOUT)
    assert server.sent == []


async def test_unread_messages_are_bounded(app, monkeypatch):
    """Up to ``max_queue`` unread messages are kept; one more closes the connection (1008).

    The reader never stops receiving, so a client that leaves is always seen.
    """
    monkeypatch.setattr(aioflask.websockets.WebSocket, "max_queue", 4)
    release = asyncio.Event()
    got = []
    log = []

    @app.websocket("/slow")
    async def slow():
        await websocket.accept()
        try:
            await release.wait()
        except asyncio.CancelledError:
            log.append(("cancelled", websocket.close_code, websocket.close_reason))
            raise
        async for message in websocket:
            got.append(message)

    server = Server([{"type": "websocket.receive", "text": str(i)} for i in range(4)])
    task = asyncio.ensure_future(app(websocket_scope("/slow"), server.receive, server.send))
    await until(lambda: server.receives == 6)  # connect, 4 queued, and waiting for more
    release.set()
    await until(lambda: len(got) == 4)
    assert got == ["0", "1", "2", "3"]
    server.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, TIMEOUT)
    assert log == []

    release.clear()
    server = Server([{"type": "websocket.receive", "text": str(i)} for i in range(5)])
    await asyncio.wait_for(app(websocket_scope("/slow"), server.receive, server.send), TIMEOUT)
    reason = "more than 4 messages unread"
    assert log == [("cancelled", 1008, reason)]
    assert server.sent[-1] == {"type": "websocket.close", "code": 1008, "reason": reason}


async def test_closing_after_the_client_left_sends_nothing(app):
    @app.websocket("/late")
    async def late():
        await websocket.accept()
        try:
            await asyncio.sleep(3600)
        finally:
            await websocket.close()

    server = Server([{"type": "websocket.disconnect", "code": 1001}])
    await asyncio.wait_for(app(websocket_scope("/late"), server.receive, server.send), TIMEOUT)
    assert [m["type"] for m in server.sent] == ["websocket.accept"]


async def test_unknown_scope_still_raises(app):
    with pytest.raises(ValueError, match="cannot serve ASGI scope type"):
        await app({"type": "something"}, None, None)


# -- under uvicorn, with the websockets client library --------------------------------


@pytest.fixture
def realtime(start_server: Callable[..., UvicornProcess]) -> UvicornProcess:
    return start_server("realtime_app:app")


def ws_url(server: UvicornProcess, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def state(server: UvicornProcess, key: str, check: Callable[[dict], bool]) -> dict:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(200):
            value = (await http.get(f"/state/{key}")).json()
            if check(value):
                return value
            await asyncio.sleep(0.025)
    raise AssertionError(f"state of {key}: {value}")


async def test_uvicorn_echo(realtime):
    async with connect(ws_url(realtime, "/ws/echo"), subprotocols=["echo"]) as ws:
        assert ws.subprotocol == "echo"
        await ws.send("héllo")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "héllo"
        await ws.send(b"\x01\x02")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x01\x02"
        big = "x" * 1_000_000
        await ws.send(big)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == big


async def test_uvicorn_sync_handler_and_session(realtime):
    async with httpx.AsyncClient(base_url=realtime.url) as http:
        await http.post("/session/bob")
        cookie = http.cookies["session"]
    headers = {"Cookie": f"session={cookie}"}
    async with connect(ws_url(realtime, "/ws/sync-echo"), additional_headers=headers) as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == '{"echo": "hi", "session": "bob"}'


@pytest.mark.parametrize(
    ("path", "status"),
    [("/ws/nowhere", 404), ("/ws/echo?token=bad", 401), ("/ws/refuse", 403), ("/state/x", 400)],
)
async def test_uvicorn_refusals(realtime, path, status):
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(realtime, path)):
            pass
    assert info.value.response.status_code == status


async def test_uvicorn_client_disconnect_cancels_the_handler(realtime):
    key = uuid.uuid4().hex
    async with connect(ws_url(realtime, f"/ws/wait/{key}")):
        await state(realtime, key, lambda s: s.get("accepted"))
    final = await state(realtime, key, lambda s: "close_code" in s)
    assert final == {"accepted": True, "cancelled": True, "close_code": 1000}


async def test_uvicorn_handler_error_closes_1011(realtime):
    async with connect(ws_url(realtime, "/ws/fail")) as ws:
        await ws.send("boom")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert "RuntimeError: the handler failed" in realtime.log


async def test_uvicorn_proxy_attributes_and_blueprint_hooks(realtime):
    key = uuid.uuid4().hex
    url = ws_url(realtime, f"/hooked/info/{key}?x=y")
    headers = {"X-Test": "hi", "Cookie": "flavour=mint"}
    async with connect(url, additional_headers=headers, subprotocols=["one", "two"]) as ws:
        assert ws.subprotocol == "one"
        info = aioflask.json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        await ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    host = realtime.url.removeprefix("http://")
    assert info == {
        "args": {"x": "y"},
        "header": "hi",
        "cookie": "mint",
        "path": f"/hooked/info/{key}",
        "full_path": f"/hooked/info/{key}?x=y",
        "url": f"ws://{host}/hooked/info/{key}?x=y",
        "scheme": "ws",
        "query_string": "x=y",
    }
    final = await state(realtime, key, lambda s: "websocket_tearing_down" in s.get("hooks", []))
    assert final["hooks"] == [
        "before_websocket",
        "after_websocket None",  # accepted: the handshake response went out then
        "teardown_websocket NoneType",
        "websocket_tearing_down",
    ]


async def test_uvicorn_before_websocket_refuses(realtime):
    key = uuid.uuid4().hex
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(realtime, f"/hooked/info/{key}?deny=1")):
            pass
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"denied by before_websocket"
    final = await state(realtime, key, lambda s: "websocket_tearing_down" in s.get("hooks", []))
    assert final["hooks"] == [
        "before_websocket",
        "after_websocket <Response 26 bytes [403 FORBIDDEN]>",
        "teardown_websocket NoneType",
        "websocket_tearing_down",
    ]


async def test_uvicorn_many_clients_in_a_room(realtime):
    url = ws_url(realtime, "/ws/room/lobby")
    clients = []
    try:
        for i in range(20):
            ws = await connect(url)
            clients.append(ws)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == f'{{"members": {i + 1}}}'
        await clients[0].send("hello all")
        got = await asyncio.gather(*(asyncio.wait_for(c.recv(), TIMEOUT) for c in clients))
        assert got == ["hello all"] * 20
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_uvicorn_shutdown_closes_connections(start_server, tmp_path):
    log = tmp_path / "realtime.log"
    server = start_server("realtime_app:app", env={"REALTIME_LOG": str(log)})
    async with connect(ws_url(server, "/ws/wait/k")) as ws:
        await state(server, "k", lambda s: s.get("accepted"))
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1012  # service restart
    assert server.wait_exit(15) in (0, -signal.SIGTERM)
    lines = log.read_text().splitlines()
    assert lines == ["startup", "accepted k", "finally k 1012", "after_serving"]


def test_a_websocket_route_served_through_wsgi_says_it_needs_an_asgi_server():
    app = Flask(__name__)

    @app.websocket("/ws")
    async def handler():
        await websocket.accept()

    headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
    response = flask.testing.FlaskClient(app, app.response_class).get("/ws", headers=headers)
    assert response.status_code == 501
    assert "WebSockets need an ASGI server" in response.text


# -- limits ----------------------------------------------------------------------------


async def test_a_message_over_the_size_limit_closes_with_1009(start_server):
    # uvicorn's own limit stays at its 16 MiB default: the app enforces this one.
    server = start_server("hardening_app:app", env={"HARDENING_WEBSOCKET_MAX_MESSAGE_SIZE": "1024"})
    url = server.url.replace("http", "ws") + "/ws/echo"
    for too_big in (b"x" * 1025, "€" * 342):  # 1,026 bytes of UTF-8 in 342 characters
        async with connect(url) as ws:
            await ws.send(b"y" * 1024)  # at the limit: fine
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"y" * 1024
            await ws.send("€" * 341)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "€" * 341
            await ws.send(too_big)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (1009, "message too big")
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/state")).json()["echo_close_code"] == 1009


async def test_size_limit_defaults_to_uvicorns(app):
    assert app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] == 16 * 1024 * 1024
    assert app.config["WEBSOCKET_PING_INTERVAL"] == 20.0
    assert app.config["WEBSOCKET_PING_TIMEOUT"] == 20.0
