"""Streamed request bodies in the test client: ``client.request(...)`` and ``data=`` iterables."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from werkzeug.exceptions import ClientDisconnected

from _uvicorn import APPS_DIR, UvicornProcess
from aioflask import Flask, Response, request, stream_with_context
from aioflask.testing import FlaskClient

MiB = 1024 * 1024


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.testing = True
    app.config["MAX_CONTENT_LENGTH"] = 1000
    app.extensions["log"] = []

    @app.post("/echo")
    def echo() -> Response:
        """Send back each chunk of the body as soon as it is read."""

        def chunks() -> Iterator[bytes]:
            while data := request.stream.read(100):
                yield b"got " + data

        return Response(stream_with_context(chunks()))

    @app.post("/read")
    def read() -> dict[str, object]:
        """Log each chunk as it is read; answer with the whole body."""
        log: list[object] = app.extensions["log"]
        body = b""
        try:
            while data := request.stream.read(100):
                log.append(("read", data))
                body += data
        except ClientDisconnected as e:
            log.append(("disconnected", type(e).__name__))
            raise
        return {
            "body": body.decode(),
            "length": request.headers.get("Content-Length"),
            "encoding": request.headers.get("Transfer-Encoding"),
        }

    @app.post("/ignore")
    def ignore() -> str:
        return "not read"

    @app.post("/first")
    def first() -> bytes:
        return request.stream.read(1)

    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


async def test_the_view_reads_each_chunk_before_the_next_is_sent(client: FlaskClient) -> None:
    async with client.request("/echo", method="POST") as connection:
        assert connection.status_code is None  # nothing read, nothing answered yet
        await connection.send(b"one")
        # The app read "one" and answered with it while the body is still open.
        assert await connection.receive() == b"got one"
        assert connection.status_code == 200
        assert connection.headers is not None
        assert "Content-Length" not in connection.headers
        await connection.send(b"two")
        assert await connection.receive() == b"got two"
        await connection.send_complete(b"three")
        assert await connection.receive() == b"got three"
        assert await connection.receive() == b""
        response = await connection.as_response()
    assert response.status_code == 200
    assert response.data == b"got onegot twogot three"
    assert response.request.path == "/echo"


def test_sync_test_sends_a_body_piece_by_piece(client: FlaskClient) -> None:
    with client.request("/echo", method="POST") as connection:
        connection.send(b"one")
        assert connection.receive() == b"got one"
        connection.send(b"two")
        assert connection.receive() == b"got two"
        connection.send_complete()
        assert connection.receive() == b""
        assert connection.as_response().data == b"got onegot two"


async def test_body_goes_chunked_or_with_a_declared_length(app: Flask, client: FlaskClient) -> None:
    async with client.request("/read", method="POST") as connection:
        await connection.send(b"ab")
        await connection.send(b"cd")
        response = await connection.as_response()  # ends the body
    assert response.json == {"body": "abcd", "length": None, "encoding": "chunked"}
    assert app.extensions["log"] == [("read", b"ab"), ("read", b"cd")]
    async with client.request("/read", method="POST", content_length=4) as connection:
        await connection.send(b"ab")
        await connection.send_complete(b"cd")
        response = await connection.as_response()
    assert response.json == {"body": "abcd", "length": "4", "encoding": None}


async def test_max_content_length_trips_before_the_body_ends(
    app: Flask, client: FlaskClient
) -> None:
    async with client.request("/read", method="POST") as connection:
        await connection.send(b"x" * 600)
        await connection.send(b"x" * 600)  # 1200 bytes: past the limit of 1000
        assert b"Request Entity Too Large" in await connection.receive()
        assert connection.status_code == 413  # before the body ended
        await connection.send(b"x" * 600)  # the app is done: dropped
        response = await connection.as_response()
    assert response.status_code == 413
    # The app read up to the limit, then stopped.
    assert sum(len(data) for _, data in app.extensions["log"]) == 1000


async def test_disconnect_before_the_end_of_the_body(app: Flask, client: FlaskClient) -> None:
    async with client.request("/read", method="POST") as connection:
        await connection.send(b"partial")
        await connection.disconnect()
        assert connection.status_code is None  # nobody to answer
        with pytest.raises(RuntimeError, match="already complete"):
            await connection.send(b"more")
    assert app.extensions["log"] == [("read", b"partial"), ("disconnected", "ClientDisconnected")]
    # Leaving the block early disconnects too.
    async with client.request("/read", method="POST") as connection:
        await connection.send(b"left")
    assert app.extensions["log"][-2:] == [("read", b"left"), ("disconnected", "ClientDisconnected")]


async def test_disconnect_during_a_streamed_response_closes_it(
    app: Flask, client: FlaskClient
) -> None:
    closed = []

    @app.post("/forever")
    def forever() -> Response:
        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    yield request.stream.read(1) or b"."
            finally:
                closed.append(True)

        return Response(stream_with_context(chunks()))

    async with client.request("/forever", method="POST") as connection:
        await connection.send(b"a")
        assert await connection.receive() == b"a"
        await connection.disconnect()
    assert closed == [True]


async def test_an_app_that_answers_without_reading_the_body(client: FlaskClient) -> None:
    async with client.request("/ignore", method="POST") as connection:
        await connection.send(b"unread")  # dropped once the app finished
        await connection.send(b"unread")
        response = await connection.as_response()
    assert response.data == b"not read"


async def test_request_takes_no_body_argument(client: FlaskClient) -> None:
    with pytest.raises(TypeError, match=r"connection\.send"):
        async with client.request("/read", method="POST", data=b"x"):
            pass


async def test_failing_view_raises_in_the_test(app: Flask, client: FlaskClient) -> None:
    @app.post("/fail")
    def fail() -> str:
        request.stream.read(1)
        raise LookupError("view failed")

    with pytest.raises(LookupError, match="view failed"):
        async with client.request("/fail", method="POST") as connection:
            await connection.send(b"x")


async def test_data_iterator_is_pulled_as_the_app_reads(app: Flask, client: FlaskClient) -> None:
    log = app.extensions["log"]

    def body() -> Iterator[bytes]:
        for part in (b"one", b"two"):
            log.append(("sent", part))
            yield part

    response = await client.post("/read", data=body())
    assert response.json == {"body": "onetwo", "length": None, "encoding": "chunked"}
    assert log == [("sent", b"one"), ("read", b"one"), ("sent", b"two"), ("read", b"two")]


async def test_data_async_iterable_and_sync_tests(app: Flask, client: FlaskClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            await asyncio.sleep(0)
            yield part

    response = await client.post("/read", data=body())
    assert response.json["body"] == "abc"
    async with client.stream("POST", "/echo", data=body()) as streamed:
        assert [chunk async for chunk in streamed.aiter_bytes()] == [b"got a", b"got b", b"got c"]


def test_data_iterator_in_a_sync_test(client: FlaskClient) -> None:
    response = client.post("/read", data=iter([b"x", b"y"]))
    assert response.json == {"body": "xy", "length": None, "encoding": "chunked"}
    # A list stays Werkzeug's: form fields.
    assert client.post("/read", data={"a": "1"}).json["body"] == "a=1"


async def test_data_iterator_of_text_is_an_error(client: FlaskClient) -> None:
    with pytest.raises(TypeError, match="must yield bytes"):
        await client.post("/read", data=iter(["text"]))


async def test_unread_data_generator_is_closed(client: FlaskClient) -> None:
    closed = []

    def body() -> Iterator[bytes]:
        try:
            while True:
                yield b"x"
        finally:
            closed.append(True)

    response = await client.post("/first", data=body())
    assert response.data == b"x"
    assert closed == [True]


def _server_app() -> Flask:
    """``tests/apps/server_app.py`` (limit: 1 MiB), in this process."""
    spec = importlib.util.spec_from_file_location("server_app_here", APPS_DIR / "server_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app  # type: ignore[no-any-return]


async def _chunks(size: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


@pytest.mark.parametrize("size", [MiB // 2, MiB, 3 * MiB])
async def test_streamed_bodies_are_answered_as_through_uvicorn(
    server: UvicornProcess, size: int
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        real = await http.post("/count", content=_chunks(size))
    assert real.request.headers["transfer-encoding"] == "chunked"
    client = _server_app().test_client()
    ours = await client.post("/count", data=_chunks(size))
    assert ours.status_code == real.status_code == (200 if size <= MiB else 413)
    if size <= MiB:
        assert ours.json == real.json() == {"count": size}
    async with client.request("/count", method="POST") as connection:
        async for chunk in _chunks(size):
            await connection.send(chunk)
            if connection.status_code is not None:
                break  # answered before the end of the body
        response = await connection.as_response()
    assert response.status_code == real.status_code
    assert response.data == real.content
