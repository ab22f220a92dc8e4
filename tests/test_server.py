"""aioflask under a real uvicorn (a subprocess), with httpx as the client.

The app is ``tests/apps/server_app.py``; it reports what happened on its side
(generators closed, views cancelled) through ``/state/<key>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from werkzeug.urls import iri_to_uri

import aioflask
from _uvicorn import UvicornProcess

MiB = 1024 * 1024
CHUNK = 64 * 1024


def new_key() -> str:
    return uuid.uuid4().hex


async def wait_for_state(
    client: httpx.AsyncClient,
    key: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll ``/state/<key>`` until ``check(state)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = (await client.get(f"/state/{key}")).json()
        if check(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"state of {key} after {timeout} s: {state}")
        await asyncio.sleep(0.05)


async def read_exactly(chunks: AsyncIterator[bytes], size: int, timeout: float = 10.0) -> bytes:
    """Read ``size`` bytes of a response body (fail if they do not come in time)."""

    async def read() -> bytes:
        data = b""
        while len(data) < size:
            data += await chunks.__anext__()
        return data

    return await asyncio.wait_for(read(), timeout)


async def assert_nothing_left(client: httpx.AsyncClient, timeout: float = 10.0) -> None:
    """No request task and no bridge greenlet is left but the one asking."""
    deadline = time.monotonic() + timeout
    while True:
        live = (await client.get("/debug/live")).json()
        # The server task, the lifespan task, this request's task; this greenlet.
        if live["tasks"] <= 3 and live["greenlets"] == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left running in the server: {live}")
        await asyncio.sleep(0.05)


async def ping(client: httpx.AsyncClient) -> None:
    response = await client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


# -- the server's view of the app ------------------------------------------------------


def test_uvicorn_detects_asgi3() -> None:
    config = uvicorn.Config(aioflask.Flask(__name__), log_config=None, lifespan="off")
    config.load()
    assert config.interface == "asgi3"


async def test_ping(client: httpx.AsyncClient) -> None:
    await ping(client)
    await assert_nothing_left(client)


# -- concurrency ------------------------------------------------------------------------


async def test_blocking_views_run_in_the_apps_thread_pool(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.get("/blocking") for _ in range(8)))
    assert [r.json() for r in responses] == [{"on_loop_thread": False}] * 8
    threads = (await client.get("/threads")).json()
    assert threads["peak"] >= 2  # several blocked at once, the loop went on
    assert all(name.startswith("aioflask-server_app") for name in threads["names"])
    await ping(client)


async def test_template_awaits_and_loops_over_async_generators(client: httpx.AsyncClient) -> None:
    response = await client.get("/template")
    assert response.status_code == 200
    assert response.text == "HI:012:0,1"


async def test_concurrent_async_views(server: UvicornProcess) -> None:
    """200 requests at once to a view that awaits asyncio.sleep(0.2).

    One httpx client per request: a single client's pool costs O(connections)
    per request event, and with 200 connections in flight that client, not the
    server, needs seconds of CPU (measured: 5-8 s for this batch).
    """
    n = 200
    tls = ssl.create_default_context()  # shared: one per client costs ~30 ms each
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=60, verify=tls)
            )
            for _ in range(n)
        ]
        # Open the connections first: the batch below measures requests only.
        await asyncio.gather(*(client.get("/ping") for client in clients))
        await clients[0].delete("/inflight")
        start = time.perf_counter()
        responses = await asyncio.gather(*(client.get("/sleep") for client in clients))
        elapsed = time.perf_counter() - start
        peak = (await clients[0].get("/inflight")).json()["peak"]
    print(f"\n{n} concurrent requests to a view awaiting asyncio.sleep(0.2): {elapsed:.2f} s")
    print(f"at most {peak} requests in flight at once in the server")
    assert [r.status_code for r in responses] == [200] * n
    assert all(r.json() == {"slept": 0.2} for r in responses)
    # Concurrency shown by the server's own count, not by a clock (serially
    # this would take n * 0.2 = 40 s, with one request in flight).
    assert peak >= n // 4


# -- request bodies ----------------------------------------------------------------------


async def chunked_body(size: int, chunk: bytes = b"x" * CHUNK) -> AsyncIterator[bytes]:
    """A request body streamed by the client (one chunk object, reused)."""
    sent = 0
    while sent < size:
        part = chunk[: size - sent]
        sent += len(part)
        yield part


async def test_upload_is_streamed(server: UvicornProcess, client: httpx.AsyncClient) -> None:
    size = 50 * MiB
    # Warm up (code paths, allocator arenas) before the baseline.
    warm = await client.post("/count-unlimited", content=chunked_body(4 * MiB))
    assert warm.json() == {"count": 4 * MiB}
    baseline = server.rss()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = await client.post("/count-unlimited", content=chunked_body(size))
    finally:
        done.set()
        sampler.join()
    growth = peak - baseline
    print(f"\nserver RSS grew by {growth / MiB:.2f} MiB during a {size // MiB} MiB upload")
    assert response.status_code == 200
    assert response.json() == {"count": size}
    assert growth < 15 * MiB


@pytest.mark.parametrize("size", [MiB // 2, MiB - 1])
async def test_upload_within_limit(client: httpx.AsyncClient, size: int) -> None:
    response = await client.post("/count", content=chunked_body(size))
    assert response.json() == {"count": size}


async def test_max_content_length_chunked(client: httpx.AsyncClient) -> None:
    response = await client.post("/count", content=chunked_body(3 * MiB))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    await ping(client)


async def test_max_content_length_declared(client: httpx.AsyncClient) -> None:
    response = await client.post("/count", content=b"x" * (2 * MiB))
    assert response.request.headers["content-length"] == str(2 * MiB)
    assert response.status_code == 413
    await ping(client)


async def test_sync_view_reads_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/json-sync", json={"é": [1, 2]})
    assert response.json() == {"got": {"é": [1, 2]}}


async def test_async_view_reads_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/json-async", json={"é": [1, 2]})
    assert response.json() == {"got": {"é": [1, 2]}}


# -- streaming responses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "chunks"),
    [
        ("sync", [b"sync-0-t;", b"sync-1-t;", b"sync-2-t;"]),
        ("async", [b"async-0;", b"async-1;", b"async-2;"]),
    ],
)
async def test_streaming_chunk_by_chunk(
    client: httpx.AsyncClient, kind: str, chunks: list[bytes]
) -> None:
    key = new_key()
    url = f"/stream/{kind}/{key}"
    async with client.stream("GET", url, params={"tag": "t"}) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        body = response.aiter_raw()
        try:
            # The generator waits for a release before each later chunk: the
            # first chunk must arrive while the second does not exist yet.
            assert await read_exactly(body, len(chunks[0])) == chunks[0]
            state = await wait_for_state(client, key, lambda s: True)
            assert state["produced"] == 1
            for chunk in chunks[1:]:
                await client.post(f"/release/{key}")
                assert await read_exactly(body, len(chunk)) == chunk
            assert [c async for c in body] == []
        finally:
            await body.aclose()
    await wait_for_state(client, key, lambda s: s["closed"])
    await assert_nothing_left(client)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_disconnect_closes_generator(own_client: httpx.AsyncClient, kind: str) -> None:
    client = own_client
    key = new_key()
    async with client.stream("GET", f"/forever/{kind}/{key}") as response:
        assert response.status_code == 200
        body = response.aiter_raw()
        assert await read_exactly(body, 1024) == b"x" * 1024
        await body.aclose()
    # Leaving the block before the body ends closes the connection.
    state = await wait_for_state(client, key, lambda s: s["closed"], timeout=5)
    await asyncio.sleep(0.2)
    assert (await client.get(f"/state/{key}")).json()["produced"] == state["produced"]
    await ping(client)
    await assert_nothing_left(client)


async def test_disconnect_cancels_async_view(own_client: httpx.AsyncClient) -> None:
    client = own_client
    key = new_key()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
    try:
        writer.write(f"GET /wait-forever?key={key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await wait_for_state(client, key, lambda s: s["started"])
    finally:
        writer.close()
        await writer.wait_closed()
    state = await wait_for_state(client, key, lambda s: s["closed"], timeout=5)
    assert state["cancelled"]
    # Flask's own cleanup ran: the request context was popped.
    assert state["teardown"]
    assert await reader.read() == b""
    await ping(client)
    await assert_nothing_left(client)


async def test_disconnect_closes_busy_generator(own_client: httpx.AsyncClient) -> None:
    """An endless generator that never awaits is stopped by a disconnect too.

    Nothing in it waits: the event loop only runs when sending the body does.
    After a disconnect uvicorn's ``send`` returns at once, so unless the
    loop gets to run, the disconnect is never seen and the server hangs.
    """
    client = own_client
    key = new_key()
    async with client.stream("GET", f"/forever/busy/{key}") as response:
        body = response.aiter_raw()
        data = await read_exactly(body, 1024)
        assert data.startswith(b"a line of a report that never ends\n")
        await body.aclose()
    await wait_for_state(client, key, lambda s: s["closed"], timeout=5)
    await ping(client)
    await assert_nothing_left(client)


async def test_busy_stream_lets_others_in(own_client: httpx.AsyncClient) -> None:
    """While a generator that never awaits streams to a fast reader, the server
    still answers other requests (the loop runs between chunks)."""
    client = own_client
    key = new_key()
    async with client.stream("GET", f"/forever/busy/{key}") as response:
        body = response.aiter_raw()

        async def drain() -> None:
            async for _ in body:
                pass

        draining = asyncio.ensure_future(drain())
        try:
            await asyncio.wait_for(ping(client), 5)
            assert not draining.done()
        finally:
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining
            await body.aclose()


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(1000, id="small"),
        pytest.param(
            2 * MiB,
            id="large",
        ),
    ],
)
async def test_disconnect_with_unread_body(own_client: httpx.AsyncClient, sent: int) -> None:
    """The view streams without reading the request body; the client aborts its upload.

    A body of more than the server keeps for a reader that may come must not
    keep the disconnect from being seen either.
    """
    client = own_client
    key = new_key()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.base_url.port)
    try:
        length = 4 * MiB
        head = f"POST /forever/sync/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        # Not drained: past the socket buffers, the rest waits in this process.
        writer.write(head.encode() + b"x" * sent)
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert response.startswith(b"HTTP/1.1 200 ")
        assert await asyncio.wait_for(reader.read(1), 5)
    finally:
        writer.transport.abort()
    await wait_for_state(client, key, lambda s: s["closed"], timeout=5)
    await ping(client)
    await assert_nothing_left(client)


async def test_head_streaming(client: httpx.AsyncClient) -> None:
    response = await client.head("/stream/head")
    assert response.status_code == 200
    assert response.content == b""
    await assert_nothing_left(client)


# -- URLs and headers --------------------------------------------------------------------


async def test_non_ascii_path_and_query(server: UvicornProcess, client: httpx.AsyncClient):
    response = await client.get("/echo/héllo wörld/日本?q=ünï&x=日本&x=2")
    data = response.json()
    sent = response.request.url
    assert sent.raw_path.startswith(b"/echo/h%C3%A9llo%20w%C3%B6rld/%E6%97%A5%E6%9C%AC?")
    assert data["path"] == "/echo/héllo wörld/日本"
    assert data["view_args"] == {"a": "héllo wörld", "b": "日本"}
    assert data["args"] == {"q": ["ünï"], "x": ["日本", "2"]}
    assert data["full_path"] == "/echo/héllo wörld/日本?" + sent.query.decode()
    # Werkzeug leaves non-ASCII characters unquoted in request.url (an IRI).
    assert iri_to_uri(data["url"]) == str(sent)
    assert data["raw_uri"] == sent.raw_path.decode()


async def test_path_converter(client: httpx.AsyncClient) -> None:
    response = await client.get("/path/ça/va/日本.txt")
    data = response.json()
    assert data["view_args"] == {"p": "ça/va/日本.txt"}
    assert data["path"] == "/path/ça/va/日本.txt"


async def test_encoded_slash(client: httpx.AsyncClient) -> None:
    # As under a WSGI server, PATH_INFO is decoded: %2F is a slash there.
    # The raw URI keeps it.
    response = await client.get("/path/a%2Fb/c")
    data = response.json()
    assert data["view_args"] == {"p": "a/b/c"}
    assert data["raw_uri"] == "/path/a%2Fb/c"
    response = await client.get("/echo/a%2Fb/c")
    assert response.status_code == 404


async def test_plus_and_escapes_in_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/echo/a/b?p=1+2&s=%2B&amp=%26&empty=&sp=a%20b")
    data = response.json()
    assert data["args"] == {"p": ["1 2"], "s": ["+"], "amp": ["&"], "empty": [""], "sp": ["a b"]}
    assert data["full_path"] == "/echo/a/b?p=1+2&s=%2B&amp=%26&empty=&sp=a%20b"


async def test_request_headers(server: UvicornProcess, client: httpx.AsyncClient) -> None:
    headers = [
        ("X-Multi", "a"),
        ("X-Multi", "b, c"),
        ("Cookie", "one=1"),
        ("Cookie", "two=2"),
        ("User-Agent", "aioflask-tests"),
    ]
    response = await client.get("/headers", headers=headers)
    data = response.json()
    assert data["multi"] == "a,b, c"
    assert data["cookies"] == {"one": "1", "two": "2"}
    assert data["user_agent"] == "aioflask-tests"
    assert data["remote_addr"] == "127.0.0.1"
    assert data["scheme"] == "http"
    assert data["host"] == f"127.0.0.1:{server.port}"
    assert data["url"] == f"{server.url}/headers"


async def test_cookies_and_session(client: httpx.AsyncClient) -> None:
    response = await client.post("/session/héllo")
    assert response.json() == {"set": "héllo"}
    assert {"session", "plain"} <= set(client.cookies)
    response = await client.get("/session")
    assert response.json() == {"value": "héllo", "plain": "cookie-value"}


async def test_head(client: httpx.AsyncClient) -> None:
    get = await client.get("/text")
    head = await client.head("/text")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content) == len("héllo ".encode()) * 1000
    assert head.headers["content-type"] == get.headers["content-type"]
    await ping(client)


# -- lifespan ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serving_hooks(
    start_server: Callable[..., UvicornProcess], tmp_path: Path, sig: signal.Signals
) -> None:
    log = tmp_path / "lifespan.log"
    server = start_server("lifespan_app:app", env={"LIFESPAN_LOG": str(log)})
    startup = ["startup-async lifespan_app", "startup-sync lifespan_app startup-async"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/")
    # Both startup hooks ran before the first request was served.
    assert response.json() == {"log": [*startup, "request"]}
    server.process.send_signal(sig)
    returncode = server.wait_exit(15)  # on its own: not killed
    # uvicorn re-raises the signal once shut down (SIGINT's handler then exits 0).
    assert returncode in (0, -sig)
    shutdown = ["shutdown-async lifespan_app", "shutdown-sync lifespan_app"]
    assert log.read_text().splitlines() == [*startup, "request", *shutdown]
    assert "Application shutdown complete" in server.log
    assert "Traceback" not in server.log


async def test_failing_startup_hook(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    log = tmp_path / "lifespan.log"
    env = {"LIFESPAN_LOG": str(log), "LIFESPAN_FAIL": "1"}
    server = start_server("lifespan_app:app", env=env, wait=False)
    assert server.wait_exit(30) != 0
    output = server.log
    assert "RuntimeError: boom in before_serving" in output
    assert "Application startup failed" in output
    assert "Uvicorn running" not in output
    assert log.read_text().splitlines() == [
        "startup-async lifespan_app",
        "startup-sync lifespan_app startup-async",
    ]
