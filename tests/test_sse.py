"""Server-sent events: the wire format, the response, keep-alives, disconnects."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from _uvicorn import UvicornProcess
from aioflask import (
    Flask,
    ServerSentEvent,
    await_,
    request,
    sse_response,
    stream_with_context,
)
from aioflask.sse import KEEPALIVE

TIMEOUT = 5.0


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


def parse(stream: bytes) -> list[dict[str, str]]:
    """Events as an EventSource would dispatch them (comments dropped)."""
    events = []
    for block in stream.decode().split("\n\n")[:-1]:
        event: dict[str, str] = {}
        data = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "data":
                data.append(value)
            else:
                event[name] = value
        if data:
            events.append({**event, "data": "\n".join(data)})
    return events


def test_encode_a_plain_event():
    assert ServerSentEvent("hello").encode() == b"data: hello\n\n"
    assert ServerSentEvent().encode() == b"data: \n\n"


def test_encode_all_fields():
    event = ServerSentEvent("x", event="update", id=7, retry=2500)
    assert event.encode() == b"event: update\nid: 7\nretry: 2500\ndata: x\n\n"


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb"])
def test_line_breaks_in_data_become_data_lines(text):
    assert ServerSentEvent(text).encode() == b"data: a\ndata: b\n\n"


def test_trailing_line_break_is_kept():
    encoded = ServerSentEvent("line\n").encode()
    assert encoded == b"data: line\ndata: \n\n"
    assert parse(encoded) == [{"data": "line\n"}]


def test_non_string_data_is_json():
    assert ServerSentEvent({"a": [1, 2]}).encode() == b'data: {"a": [1, 2]}\n\n'
    assert ServerSentEvent(3).encode() == b"data: 3\n\n"
    assert ServerSentEvent("3").encode() == b"data: 3\n\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "a\nb"}, "event cannot contain a line break"),
        ({"event": "a\rb"}, "event cannot contain a line break"),
        ({"id": "1\n2"}, "id cannot contain a line break or NUL"),
        ({"id": "1\x002"}, "id cannot contain a line break or NUL"),
    ],
)
def test_fields_cannot_break_the_stream(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ServerSentEvent("x", **kwargs).encode()


def test_repr():
    assert (
        repr(ServerSentEvent("x", event="e", id=1)) == "ServerSentEvent(data='x', event='e', id=1)"
    )


async def test_response_headers(app, client):
    async def nothing():
        return
        yield

    @app.get("/events")
    def events():
        return sse_response(nothing(), status=201, headers={"X-Extra": "1"})

    response = await client.get("/events")
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["X-Extra"] == "1"
    assert "Content-Length" not in response.headers
    assert response.data == b""


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_items_and_the_apps_json_provider(app, client):
    @app.get("/events")
    def events():
        async def generate():
            yield "text"
            yield Point(1, 2)  # Flask's JSON provider knows dataclasses
            yield ServerSentEvent("done", event="end", id="last")

        return sse_response(generate())

    response = await client.get("/events")
    assert parse(response.data) == [
        {"data": "text"},
        {"data": '{"x": 1, "y": 2}'},
        {"event": "end", "id": "last", "data": "done"},
    ]


async def test_events_stream_as_they_are_produced(app, client):
    gate = asyncio.Event()

    @app.get("/events")
    def events():
        async def generate():
            yield "first"
            await gate.wait()
            yield "second"

        return sse_response(generate())

    async with client.stream("GET", "/events") as response:
        chunks = response.aiter_bytes()
        assert await asyncio.wait_for(chunks.__anext__(), TIMEOUT) == b"data: first\n\n"
        gate.set()
        assert await asyncio.wait_for(chunks.__anext__(), TIMEOUT) == b"data: second\n\n"


async def test_keepalive_comments_do_not_disturb_the_generator(app, client):
    log = []

    @app.get("/events")
    def events():
        async def generate():
            try:
                yield "a"
                await asyncio.sleep(0.25)
                yield "b"
            finally:
                log.append("closed")

        return sse_response(generate(), keepalive=0.05)

    response = await client.get("/events")
    assert response.data.startswith(b"data: a\n\n" + KEEPALIVE)
    assert response.data.endswith(KEEPALIVE + b"data: b\n\n")
    assert response.data.count(KEEPALIVE) >= 2
    assert parse(response.data) == [{"data": "a"}, {"data": "b"}]
    assert log == ["closed"]


@pytest.mark.parametrize("keepalive", [None, 0.05])
async def test_disconnect_closes_the_generator(app, client, keepalive):
    log = []

    @app.get("/events")
    def events():
        async def generate():
            try:
                n = 0
                while True:
                    yield {"n": n}
                    n += 1
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                log.append("closed")

        return sse_response(generate(), keepalive=keepalive)

    async with client.stream("GET", "/events") as response:
        chunks = response.aiter_bytes()
        for _ in range(3):
            await asyncio.wait_for(chunks.__anext__(), TIMEOUT)
    assert log == ["cancelled", "closed"]


async def test_an_error_in_the_generator_ends_the_stream(app, client):
    @app.get("/events")
    def events():
        async def generate():
            yield "ok"
            raise RuntimeError("generator failed")

        return sse_response(generate(), keepalive=1)

    chunks = []
    with pytest.raises(RuntimeError, match="generator failed"):
        async with client.stream("GET", "/events") as response:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
    assert chunks == [b"data: ok\n\n"]


async def test_last_event_id_and_stream_with_context(app, client):
    @app.get("/events")
    def events():
        resume_from = int(request.headers.get("Last-Event-ID", "0"))

        @stream_with_context
        async def generate() -> AsyncIterator[ServerSentEvent]:
            for i in range(resume_from + 1, resume_from + 3):
                yield ServerSentEvent(request.path, id=i)

        return sse_response(generate())

    response = await client.get("/events", headers={"Last-Event-ID": "5"})
    assert parse(response.data) == [
        {"id": "6", "data": "/events"},
        {"id": "7", "data": "/events"},
    ]


span: contextvars.ContextVar[str] = contextvars.ContextVar("test_sse_span", default="none")


async def test_the_whole_stream_runs_in_one_context(app, client):
    """A generator may set a context variable and reset it after later yields."""

    @app.get("/events")
    def events():
        async def generate():
            token = span.set("open")
            try:
                for i in range(3):
                    yield f"{i} {span.get()}"
                    await asyncio.sleep(0.02)  # keep-alives in between
            finally:
                span.reset(token)  # fails if run in another context

        return sse_response(generate(), keepalive=0.01)

    response = await client.get("/events")
    assert parse(response.data) == [{"data": f"{i} open"} for i in range(3)]
    assert KEEPALIVE in response.data


async def test_sync_iterables_run_on_the_bridge(app, client):
    @app.get("/events")
    def events():
        def generate():
            for i in range(2):
                await_(asyncio.sleep(0.01))
                yield ServerSentEvent(i, event="tick")

        return sse_response(generate(), keepalive=None)

    response = await client.get("/events")
    assert parse(response.data) == [
        {"event": "tick", "data": "0"},
        {"event": "tick", "data": "1"},
    ]


def test_outside_an_app_context():
    async def generate():
        yield {"a": 1}

    response = sse_response(generate(), keepalive=None)
    assert response.mimetype == "text/event-stream"


# -- under uvicorn ---------------------------------------------------------------------


async def test_uvicorn_streams_events_and_closes_on_disconnect(
    start_server: Callable[..., UvicornProcess],
) -> None:
    server = start_server("realtime_app:app")
    key = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/events/{key}") as response:
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            received = b""
            async for chunk in response.aiter_bytes():
                received += chunk
                if received.count(KEEPALIVE) >= 2:
                    break
        assert parse(received) == [{"data": '{"n": 0}'}, {"data": '{"n": 1}'}, {"data": '{"n": 2}'}]
        for _ in range(200):
            if (await http.get(f"/state/{key}")).json() == {"open": False}:
                break
            await asyncio.sleep(0.025)
        assert (await http.get(f"/state/{key}")).json() == {"open": False}
