"""Clients that leave: nothing of theirs runs on (a real uvicorn, real sockets).

20 clients at once open a stream that never ends, read 4 KiB and close their
socket; or open a WebSocket whose handler waits for something else (with
messages unread, or before it accepts) and leave. Afterwards every stream's
``finally`` has run, the loop has its tasks of before, and the server uses no
CPU: no code path of a request outlives its client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from _uvicorn import UvicornProcess

CLIENTS = 20
#: Bytes of body each client reads before it leaves.
READ = 4096
KINDS = [
    "sync",
    "async",
    "sse",
    "sse-no-keepalive",
    "sse-keepalive",
    "with-context",
    "template",
    # Generators that swallow one cancellation.
    "swallow",
    "sse-swallow",
]
#: Seconds after which a test gives up waiting (it hangs otherwise); not a bound.
PATIENCE = 30.0


@pytest.fixture
def server(start_server: Callable[..., UvicornProcess]) -> UvicornProcess:
    return start_server("abandon_app:app")


async def live(server: UvicornProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
        data: dict[str, Any] = (await client.get("/debug/live")).json()
        return data


async def until_live(server: UvicornProcess, check: Callable[[dict[str, Any]], bool]) -> float:
    """Poll until ``check(live)`` holds; the seconds it took."""
    start = time.monotonic()
    while True:
        state = await live(server)
        if check(state):
            return time.monotonic() - start
        if time.monotonic() - start > PATIENCE:
            raise AssertionError(f"still running after {PATIENCE} s: {state}")
        await asyncio.sleep(0.02)


async def read_and_leave(server: UvicornProcess, path: str) -> None:
    """GET ``path`` on a socket of its own, read ``READ`` body bytes, close the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        received = 0
        while received < READ:
            data = await reader.read(65536)
            assert data, "the server closed the stream"
            received += len(data)
    finally:
        writer.close()


async def assert_idle(server: UvicornProcess, tasks_before: int) -> None:
    """The loop is back to its tasks of before, and the server uses no CPU."""
    await until_live(server, lambda s: s["tasks"] <= tasks_before)
    before = (await live(server))["cpu"]
    await asyncio.sleep(0.5)
    after = await live(server)
    # A stream left running at full speed would use all of the 0.5 s; the
    # two /debug/live requests use a few milliseconds.
    assert after["cpu"] - before < 0.1, after
    assert after["running"] == 0, after


@pytest.mark.parametrize("delay", ["0.0", "0.01"])
@pytest.mark.parametrize("kind", KINDS)
async def test_abandoned_streams_end(server: UvicornProcess, kind: str, delay: str) -> None:
    tasks_before = (await live(server))["tasks"]
    path = f"/stream/{kind}/{delay}"
    await asyncio.gather(*(read_and_leave(server, path) for _ in range(CLIENTS)))
    took = await until_live(server, lambda s: s["ended"].get(kind, 0) == CLIENTS)
    print(f"{kind} {delay}: the {CLIENTS} streams ended {took:.3f} s after their clients left")
    await assert_idle(server, tasks_before)


def ws_url(server: UvicornProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.mark.parametrize("unread", [0, 20, 40])
async def test_a_websocket_client_that_leaves_with_messages_unread_ends_the_handler(
    server: UvicornProcess, unread: int
) -> None:
    tasks_before = (await live(server))["tasks"]

    async def visit() -> None:
        async with connect(ws_url(server, "/ws/unread")) as ws:
            for i in range(unread):
                await ws.send(str(i))

    await asyncio.gather(*(visit() for _ in range(CLIENTS)))
    await until_live(server, lambda s: s["ended"].get("ws-unread", 0) == CLIENTS)
    await assert_idle(server, tasks_before)


async def test_a_websocket_client_that_leaves_before_accept_ends_the_handler(
    server: UvicornProcess,
) -> None:
    tasks_before = (await live(server))["tasks"]

    async def visit() -> None:
        # The handshake never completes: leave while the handler waits.
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /ws/before-accept HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        await until_live(server, lambda s: s["by_kind"].get("ws-before-accept", 0) > 0)
        writer.close()

    await asyncio.gather(*(visit() for _ in range(CLIENTS)))
    await until_live(server, lambda s: s["ended"].get("ws-before-accept", 0) == CLIENTS)
    await assert_idle(server, tasks_before)
