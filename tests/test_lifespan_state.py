"""The ASGI lifespan ``state``: set by serving hooks, seen by requests (``request.state``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from _uvicorn import UvicornProcess
from aioflask import Flask, request, websocket
from aioflask.core.lifespan import State


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


def test_state_reads_and_writes_the_dict() -> None:
    data: dict = {}
    state = State(data)
    state.pool = "pool"
    assert data == {"pool": "pool"}
    assert state.pool == "pool"
    assert "pool" in state
    assert list(state) == ["pool"]
    assert state.get("missing", 1) == 1
    assert state.setdefault("n", 2) == 2
    assert state.pop("n") == 2
    assert state.pop("n", None) is None
    del state.pool
    assert data == {}
    with pytest.raises(AttributeError, match=r"no 'pool'.*client\.lifespan\(\)"):
        state.pool  # noqa: B018
    with pytest.raises(AttributeError):
        del state.pool
    assert repr(state) == "<State {}>"


async def test_hooks_fill_the_state_requests_read_it(app: Flask) -> None:
    @app.before_serving
    def first():
        app.lifespan_state.counter = {"n": 0}

    @app.while_serving
    async def second():
        app.lifespan_state.name = "pool"
        yield
        app.lifespan_state.counter["n"] += 100

    @app.get("/")
    def index():
        request.state.counter["n"] += 1
        request.state.mine = True  # this request's copy only
        return {"n": request.state.counter["n"], "names": sorted(request.state)}

    @app.websocket("/ws")
    async def ws():
        await websocket.accept()
        await websocket.send(request.state.name)

    client = app.test_client()
    async with client.lifespan():
        assert (await client.get("/")).json == {"n": 1, "names": ["counter", "mine", "name"]}
        assert (await client.get("/")).json == {"n": 2, "names": ["counter", "mine", "name"]}
        async with client.websocket("/ws") as session:
            assert await session.receive() == "pool"
        assert sorted(client.lifespan_state) == ["counter", "name"]
    assert client.lifespan_state["counter"] == {"n": 102}


def test_sync_test_client_sees_the_state(app: Flask) -> None:
    @app.before_serving
    def start():
        app.lifespan_state.ready = "yes"

    @app.get("/")
    def index():
        return request.state.get("ready", "no")

    client = app.test_client()
    assert client.get("/").text == "no"  # no lifespan run: an empty state
    with client.lifespan():
        assert client.get("/").text == "yes"


async def test_lifespan_state_outside_the_serving_hooks_is_an_error(app: Flask) -> None:
    with pytest.raises(
        RuntimeError, match=r"In a request or WebSocket handler, use request\.state"
    ):
        app.lifespan_state  # noqa: B018

    @app.get("/")
    def index():
        return repr(app.lifespan_state)

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match=r"use request\.state"):
        await app.test_client().get("/")


async def test_a_server_without_state_gives_a_clear_error(app: Flask) -> None:
    seen = []

    @app.before_serving
    def start():
        try:
            app.lifespan_state.x = 1
        except RuntimeError as exc:
            seen.append(str(exc))

    messages = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    sent = []

    async def send(message):
        sent.append(message)
        await messages.put({"type": "lifespan.shutdown"})

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "provides no lifespan state" in seen[0]
    assert "uvicorn 0.21.1 or later" in seen[0]


def test_request_state_needs_an_asgi_server(app: Flask) -> None:
    with (
        app.test_request_context("/"),
        pytest.raises(RuntimeError, match=r"request\.state needs an ASGI server"),
    ):
        request.state  # noqa: B018


# -- a real server ---------------------------------------------------------------------


async def test_uvicorn_carries_the_state_to_requests_and_websockets(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    log = tmp_path / "state.log"
    server = start_server("state_app:app", env={"STATE_LOG": str(log)})
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(3):
            body = (await http.get("/")).json()
            assert body == {
                "open": True,
                "started": server.pid,
                "names": ["mine", "pool", "started"],
            }
    async with connect(server.url.replace("http", "ws", 1) + "/ws") as ws:
        assert await ws.recv() == "True"
    server.stop(signal.SIGTERM)
    assert log.read_text().splitlines() == ["startup", "shutdown used=3"]


async def test_shutdown_hooks_see_the_state_a_server_emptied(app: Flask) -> None:
    """granian empties the lifespan state before sending ``lifespan.shutdown``."""
    seen = []

    @app.while_serving
    def pool():
        app.lifespan_state.pool = "pool"
        yield
        seen.append(app.lifespan_state.pool)

    state: dict = {}
    incoming = [{"type": "lifespan.shutdown"}, {"type": "lifespan.startup"}]

    async def receive():
        if len(incoming) == 1:  # startup is over
            assert state == {"pool": "pool"}
            state.clear()
        return incoming.pop()

    async def send(message):
        assert message["type"].endswith(".complete"), message

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}, receive, send)
    assert seen == ["pool"]
