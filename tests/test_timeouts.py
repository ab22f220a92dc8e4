"""BODY_TIMEOUT and RESPONSE_TIMEOUT under a real uvicorn, with raw sockets.

Progress is what counts: a body that keeps coming and a response that keeps
being read are never cut off; a stall longer than the limit is.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

import aioflask
from _uvicorn import UvicornProcess
from aioflask.core.timeouts import BodyTimeout, Timeouts, bounded, start

WAIT = 30.0  # for what must happen; never an upper bound on how fast


def connect(server: UvicornProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of a response with Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v)
        for k, _, v in (h.partition(": ") for h in lines[1:])
        if k.lower() == "content-length"
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def state(server: UvicornProcess) -> dict[str, object]:
    return httpx.get(server.url + "/state", timeout=WAIT).json()  # type: ignore[no-any-return]


def wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def body_server(start_server) -> UvicornProcess:
    return start_server("hardening_app:app", env={"HARDENING_BODY_TIMEOUT": "1.0"})


def test_a_body_that_keeps_moving_is_not_cut_off(body_server):
    with connect(body_server) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
        for _ in range(10):  # 2.5 s in all, 0.25 s between pieces: more than 1 s
            time.sleep(0.25)
            sock.sendall(b"z" * 1000)
        status, body = read_response(sock)
    assert (status, json.loads(body)) == (200, {"size": 10000})


@pytest.mark.parametrize("chunked", [False, True])
def test_a_stalled_body_gets_408(body_server, chunked):
    with connect(body_server) as sock:
        if chunked:
            sock.sendall(
                b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3e8\r\n" + b"z" * 1000 + b"\r\n"
            )
        else:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
            sock.sendall(b"z" * 1000)
        # ... and nothing more: the server answers once 1 s passed without progress.
        status, body = read_response(sock)
    assert status == 408
    assert b"The request body made no progress for 1.0 s." in body
    assert "upload" not in state(body_server)  # the view did not go on


def test_request_body_timeout_overrides_the_config(body_server):
    with connect(body_server) as sock:
        sock.sendall(
            b"POST /upload/patient?timeout=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
        )
        sock.sendall(b"z" * 1000)
        time.sleep(1.5)  # longer than BODY_TIMEOUT, shorter than this request's
        sock.sendall(b"z" * 1000)
        status, body = read_response(sock)
    assert (status, json.loads(body)) == (200, {"size": 2000})


@pytest.mark.parametrize(
    ("env", "path"),
    [
        ({"HARDENING_RESPONSE_TIMEOUT": "1.0"}, "/endless"),
        ({}, "/endless?timeout=1"),  # response.timeout; RESPONSE_TIMEOUT is 60
    ],
)
def test_a_response_nobody_reads_ends(start_server, env, path):
    server = start_server("hardening_app:app", env=env)
    with connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # Never read: the socket buffers fill, then the server's send waits.
        wait_for(lambda: state(server).get("endless") == "running")
        wait_for(lambda: state(server).get("endless") == "closed")  # generator closed
        # The server closed the connection: what was buffered, then the end.
        received = 0
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
    assert received > 0
    assert "ResponseTimeout: no progress for 1.0 s" in server.log


def test_a_response_that_keeps_being_read_is_not_cut_off(start_server):
    server = start_server("hardening_app:app")
    size = 8 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(f"GET /big?size={size}&timeout=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        data = b""
        start = time.monotonic()
        while b"0\r\n\r\n" not in data[-16:]:
            time.sleep(0.03)  # a slow reader: 64 KiB at a time, 3.8 s or more in all
            data = sock.recv(64 * 1024)
            received += len(data)
        assert time.monotonic() - start > 2  # longer than the timeout, in all
    assert received > size
    assert state(server)["big"] == "finished"
    assert "ResponseTimeout" not in server.log


async def test_bounded_lets_other_cancellations_through():
    async def wait() -> None:
        await bounded(asyncio.sleep(3600), 3600, BodyTimeout)

    task = asyncio.ensure_future(wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_bounded_raises_its_error_and_takes_its_cancellation_back():
    with pytest.raises(BodyTimeout, match=r"no progress for 0\.01 s") as info:
        await bounded(asyncio.sleep(3600), 0.01, BodyTimeout)
    assert info.value.seconds == 0.01
    task = asyncio.current_task()
    assert task is not None
    assert getattr(task, "cancelling", lambda: 0)() == 0
    await asyncio.sleep(0)  # not cancelled
    assert await bounded(asyncio.sleep(0, "done"), None, BodyTimeout) == "done"


def test_timeouts_are_per_request_objects():
    timeouts = Timeouts(60.0, None)
    assert (timeouts.body, timeouts.response) == (60.0, None)


async def test_request_body_timeout_reads_and_sets_the_config(app, http):
    app.config["BODY_TIMEOUT"] = 7.0
    seen = []

    @app.post("/")
    def index() -> str:
        seen.append(aioflask.request.body_timeout)
        aioflask.request.body_timeout = None
        seen.append(aioflask.request.body_timeout)
        return aioflask.request.get_data(as_text=True)

    assert (await http.post("/", content=b"body")).text == "body"
    assert seen == [7.0, None]
    with app.test_request_context():  # no server: kept, not enforced
        assert aioflask.request.body_timeout == 7.0
        aioflask.request.body_timeout = 1.0
        assert aioflask.request.body_timeout == 1.0


def test_response_timeout_defaults_to_the_config(app):
    assert app.response_class().timeout is ...


class _NoSend:
    """An awaitable whose iterator has no ``send`` (as granian's, written in Rust)."""

    def __init__(self, future):
        self.future = future

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        if not self.future.done():
            self.future._asyncio_future_blocking = True
            return self.future
        raise StopIteration(self.future.result())


async def test_awaitables_whose_iterator_cannot_send_are_bounded_too():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.set_result("at once")
    assert start(_NoSend(done), 5, BodyTimeout) == ("at once", None)
    later = loop.create_future()
    loop.call_later(0.01, later.set_result, "later")
    result, rest = start(_NoSend(later), 5, BodyTimeout)
    assert result is None
    assert await rest == "later"
    with pytest.raises(BodyTimeout):
        await bounded(_NoSend(loop.create_future()), 0.01, BodyTimeout)
