"""The async test client: Flask's client API, awaited, over the ASGI path."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage

from aioflask import (
    Flask,
    after_this_request,
    redirect,
    request,
    session,
    stream_with_context,
    url_for,
)


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test"

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def echo() -> dict[str, object]:
        files = {
            name: {"filename": f.filename, "data": f.read().decode()}
            for name, f in request.files.items()
        }
        return {
            "method": request.method,
            "args": request.args.to_dict(flat=False),
            "form": request.form.to_dict(flat=False),
            "json": request.get_json(silent=True),
            "files": files,
            "header": request.headers.get("X-Test"),
            "scope_type": request.environ["asgi.scope"]["type"],
        }

    @app.route("/echo-head", methods=["HEAD"])
    def echo_head() -> tuple[str, int, dict[str, str]]:
        return "", 204, {"X-Method": request.method}

    @app.get("/login")
    async def login() -> object:
        session["user"] = request.args["user"]
        return redirect(url_for("whoami"))

    @app.get("/whoami")
    def whoami() -> dict[str, object]:
        return {"user": session.get("user")}

    @app.get("/cookie")
    def cookie() -> str:
        @after_this_request
        def set_cookie(response):  # type: ignore[no-untyped-def]
            response.set_cookie("flavour", request.args.get("flavour", "plain"))
            return response

        return request.cookies.get("flavour", "none")

    return app


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
async def test_every_method(client, method: str) -> None:  # type: ignore[no-untyped-def]
    response = await getattr(client, method)("/echo")
    assert response.status_code == 200
    if method != "options":  # Flask answers OPTIONS itself
        assert response.json["method"] == method.upper()
        assert response.json["scope_type"] == "http"  # it went through ASGI


async def test_head(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.head("/echo-head")
    assert response.status_code == 204
    assert response.headers["X-Method"] == "HEAD"
    assert response.data == b""


async def test_json_query_string_and_headers(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/echo",
        json={"a": [1, 2], "ü": "ß"},
        query_string={"q": ["x", "日本"]},
        headers={"X-Test": "yes"},
    )
    assert response.json["json"] == {"a": [1, 2], "ü": "ß"}
    assert response.json["args"] == {"q": ["x", "日本"]}
    assert response.json["header"] == "yes"


async def test_form_and_files(client) -> None:  # type: ignore[no-untyped-def]
    big = "x" * 200_000  # bigger than one http.request message
    response = await client.post(
        "/echo",
        data={
            "name": "value",
            "upload": (io.BytesIO(b"file body"), "a.txt"),
            "big": FileStorage(io.BytesIO(big.encode()), "big.txt"),
        },
    )
    assert response.json["form"] == {"name": ["value"]}
    assert response.json["files"]["upload"] == {"filename": "a.txt", "data": "file body"}
    assert response.json["files"]["big"]["data"] == big


async def test_follow_redirects_and_session_cookie(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/login?user=ann", follow_redirects=True)
    assert response.status_code == 200
    assert response.json == {"user": "ann"}
    assert [r.status_code for r in response.history] == [302]
    assert response.request.path == "/whoami"
    assert (await client.get("/whoami")).json == {"user": "ann"}


async def test_cookies_round_trip(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/cookie?flavour=oat")).text == "none"
    assert (await client.get("/cookie")).text == "oat"
    assert client.get_cookie("flavour").value == "plain"
    client.set_cookie("flavour", "set-by-test")
    assert (await client.get("/cookie")).text == "set-by-test"


async def test_session_transaction(client) -> None:  # type: ignore[no-untyped-def]
    async with client.session_transaction() as sess:
        sess["user"] = "bob"
    assert (await client.get("/whoami")).json == {"user": "bob"}
    async with client.session_transaction() as sess:
        assert sess["user"] == "bob"


async def test_async_with_client_keeps_the_last_request_context(client) -> None:  # type: ignore[no-untyped-def]
    async with client:
        await client.get("/echo?first=1")
        await client.get("/echo?second=2", headers={"X-Test": "kept"})
        assert request.args.to_dict() == {"second": "2"}
        assert request.headers["X-Test"] == "kept"
    with pytest.raises(RuntimeError):
        request.path  # noqa: B018


async def test_exceptions_propagate_in_testing_mode(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    app.testing = True

    @app.get("/fail")
    async def fail() -> str:
        raise LookupError("from the view")

    with pytest.raises(LookupError, match="from the view"):
        await client.get("/fail")


async def test_concurrent_requests_through_one_client(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    both_arrived = asyncio.Event()
    arrived: list[str] = []

    @app.get("/meet/<name>")
    async def meet(name: str) -> str:
        arrived.append(name)
        if len(arrived) == 2:
            both_arrived.set()
        await asyncio.wait_for(both_arrived.wait(), 5)
        return name

    a, b = await asyncio.gather(client.get("/meet/a"), client.get("/meet/b"))
    assert (a.text, b.text) == ("a", "b")


async def test_stream_reads_chunk_by_chunk_and_disconnect_closes(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    step = asyncio.Event()
    closed = asyncio.Event()

    @app.get("/ticks")
    async def ticks() -> object:
        async def generate():  # type: ignore[no-untyped-def]
            try:
                for i in range(1000):
                    yield f"tick {i} {request.path}\n"
                    await step.wait()
                    step.clear()
            finally:
                closed.set()

        return stream_with_context(generate())

    async with client.stream("GET", "/ticks") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"tick 0 /ticks\n"
        step.set()
        assert await chunks.__anext__() == b"tick 1 /ticks\n"
    await asyncio.wait_for(closed.wait(), 5)


async def test_stream_of_a_failing_app_raises(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    app.testing = True

    @app.get("/fail")
    def fail() -> str:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        async with client.stream("GET", "/fail"):
            pass


async def test_cli_runner_invoke_is_awaitable(app: Flask) -> None:
    @app.cli.command("hello")
    async def hello() -> None:
        await asyncio.sleep(0)
        print("hello from", app.name)

    result = await app.test_cli_runner().invoke(args=["hello"])
    assert result.exit_code == 0, result.output
    assert result.output == f"hello from {app.name}\n"


# -- The same client from sync tests (Flask's way) ---------------------------------------


def test_sync_test_gets_responses(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/echo?a=1", json={"x": 1}, headers={"X-Test": "sync"})
    assert response.status_code == 200
    assert response.json["json"] == {"x": 1}
    assert response.json["scope_type"] == "http"  # through app(scope, receive, send)
    followed = client.get("/login?user=ada", follow_redirects=True)
    assert followed.json == {"user": "ada"}
    assert [r.status_code for r in followed.history] == [302]


def test_sync_with_client_keeps_the_last_request_context(client) -> None:  # type: ignore[no-untyped-def]
    with client:
        client.get("/echo?first=1")
        client.get("/echo?second=2", headers={"X-Test": "kept"})
        # Pushed while the app ran on its private loop, visible here.
        assert request.args.to_dict() == {"second": "2"}
        assert request.headers["X-Test"] == "kept"
    with pytest.raises(RuntimeError):
        request.path  # noqa: B018


def test_sync_session_transaction_and_cookies(client) -> None:  # type: ignore[no-untyped-def]
    with client.session_transaction() as sess:
        sess["user"] = "bob"
    assert client.get("/whoami").json == {"user": "bob"}
    with client.session_transaction() as sess:
        assert sess["user"] == "bob"
    client.set_cookie("flavour", "mint")
    assert client.get("/cookie").text == "mint"


def test_sync_cli_runner_invoke(app: Flask) -> None:
    @app.cli.command("hello")
    async def hello() -> None:
        await asyncio.sleep(0)
        print("hello from", app.name)

    result = app.test_cli_runner().invoke(args=["hello"])
    assert result.output == f"hello from {app.name}\n"


def test_sync_cli_runner_runs_a_command_as_the_flask_command_does(app: Flask) -> None:
    # No event loop runs around a sync command (as under `flask`): it may
    # start one of its own.
    async def count() -> int:
        await asyncio.sleep(0)
        return 3

    @app.cli.command("count")
    def count_command() -> None:
        print(asyncio.run(count()))

    result = app.test_cli_runner().invoke(args=["count"])
    assert result.exception is None
    assert result.output == "3\n"


def test_sync_lifespan(app: Flask) -> None:
    events: list[str] = []
    app.before_serving(lambda: events.append("start"))
    app.after_serving(lambda: events.append("stop"))
    client = app.test_client()
    with client.lifespan():
        assert events == ["start"]
        assert client.get("/whoami").status_code == 200
    assert events == ["start", "stop"]


async def test_forgotten_await_says_what_to_write(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/echo")
    with pytest.raises(TypeError, match=r"write 'await client.get\(\.\.\.\)'"):
        response.status_code  # noqa: B018
    assert (await client.get("/echo")).status_code == 200


def test_sync_websocket_session(app: Flask) -> None:
    from aioflask import websocket

    @app.websocket("/ws")
    async def ws_echo() -> None:
        await websocket.accept()
        async for message in websocket:
            if message == "bye":
                await websocket.close(1000)
                return
            await websocket.send(f"echo: {message}")

    client = app.test_client()
    with client.websocket("/ws") as ws:
        ws.send("hi")
        assert ws.receive() == "echo: hi"
        ws.send_json({"a": 1})
        assert ws.receive() == 'echo: {"a": 1}'
        ws.send("bye")
        assert list(ws) == []
        assert ws.close_code == 1000


def test_sync_stream(app: Flask) -> None:
    closed: list[bool] = []

    @app.get("/ticks")
    async def ticks() -> object:
        async def generate():  # type: ignore[no-untyped-def]
            try:
                for i in range(1000):
                    yield f"tick {i}\n"
                    await asyncio.sleep(0)
            finally:
                closed.append(True)

        return generate()

    @app.get("/short")
    def short() -> object:
        return iter(["a", "b"])

    client = app.test_client()
    with client.stream("GET", "/ticks") as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        assert [next(chunks), next(chunks)] == [b"tick 0\n", b"tick 1\n"]
    assert closed == [True]  # leaving the block disconnected the client
    with client.stream("GET", "/short") as response:
        assert response.read() == b"ab"


def _inject(app: Flask, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """Wrap the ASGI app: send ``before`` ahead of the response, ``after`` once it is done."""
    inner = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        async def send_more(message: dict[str, Any]) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                for extra in before:
                    await send(extra)
            await send(message)
            if message["type"] in ("http.response.body", "websocket.send") and not message.get(
                "more_body"
            ):
                for extra in after:
                    await send(extra)

        await inner(scope, receive, send_more)

    app.asgi_app = asgi_app  # type: ignore[method-assign]


PUSH = {"type": "http.response.push", "path": "/style.css", "headers": []}
TRAILERS = {"type": "http.response.trailers", "headers": [(b"x-sum", b"1")], "more_trailers": False}
PATHSEND = {"type": "http.response.pathsend", "path": "/etc/hostname"}
OWN = {"type": "myserver.custom", "value": 1}


async def test_extension_messages_are_recorded_not_dropped(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    _inject(app, [PUSH, OWN], [TRAILERS, PATHSEND])
    response = await client.get("/whoami")
    assert response.json == {"user": None}
    assert response.extension_messages == [PUSH, OWN, TRAILERS, PATHSEND]
    # Each request records its own.
    assert (await client.get("/whoami")).extension_messages == [PUSH, OWN, TRAILERS, PATHSEND]
    # Never leaked to the app's environ.
    assert "aioflask.testing.extension_messages" not in (await client.get("/echo")).json
    async with client.stream("GET", "/whoami") as streamed:
        assert await streamed.aread() == b'{"user":null}\n'
        assert streamed.extension_messages == [PUSH, OWN, TRAILERS, PATHSEND]
    async with client.request("/whoami") as connection:
        response = await connection.as_response()
        assert connection.extension_messages == [PUSH, OWN, TRAILERS, PATHSEND]
    assert response.extension_messages == [PUSH, OWN, TRAILERS, PATHSEND]


def test_extension_messages_in_a_sync_test(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    _inject(app, [], [TRAILERS])
    assert client.get("/whoami", follow_redirects=True).extension_messages == [TRAILERS]
    assert client.get("/echo").extension_messages == [TRAILERS]


async def test_extension_messages_of_a_websocket_session(app: Flask) -> None:
    from aioflask import websocket

    @app.websocket("/ws")
    async def ws_echo() -> None:
        await websocket.accept()
        await websocket.send("hello")

    own = {"type": "websocket.myserver.ping"}
    _inject(app, [own], [own])
    async with app.test_client().websocket("/ws") as ws:
        assert await ws.receive() == "hello"
        assert ws.extension_messages == [own, own]


@pytest.mark.parametrize(
    ("before", "after", "error"),
    [
        ([{"type": "http.response.body", "body": b"x"}], [], "before 'http.response.start'"),
        ([{"type": "http.response.start", "status": 200}], [], "after the response had started"),
        ([], [{"type": "http.response.body", "body": b"x"}], "after the response was complete"),
    ],
)
async def test_protocol_misuse_is_an_error(app: Flask, client, before, after, error: str) -> None:  # type: ignore[no-untyped-def]
    _inject(app, before, after)
    with pytest.raises(RuntimeError, match=error):
        await client.get("/whoami")


async def test_websocket_protocol_misuse_is_an_error(app: Flask) -> None:
    from aioflask import websocket

    @app.websocket("/ws")
    async def ws_misuse() -> None:
        await websocket.accept()
        await websocket.send("hello")

    _inject(app, [], [{"type": "websocket.http.response.start", "status": 200}])
    app.testing = True
    with pytest.raises(RuntimeError, match=r"response\.start' on an open WebSocket"):
        async with app.test_client().websocket("/ws") as ws:
            assert await ws.receive() == "hello"


async def test_scope_advertises_only_what_the_client_implements(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    from aioflask import websocket

    @app.get("/extensions")
    def extensions() -> dict[str, object]:
        return {"extensions": request.environ["asgi.scope"]["extensions"]}

    @app.websocket("/ws")
    async def ws_extensions() -> None:
        await websocket.accept()
        await websocket.send_json(list(request.environ["asgi.scope"]["extensions"]))

    assert (await client.get("/extensions")).json == {"extensions": {}}
    async with client.websocket("/ws") as ws:
        assert await ws.receive_json() == ["websocket.http.response"]
