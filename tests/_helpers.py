"""Test helpers: a hand-written ASGI driver that records every message.

httpx's ASGITransport is the easy way to call an app; this driver is for the
tests that need control over the messages: a body in several ``http.request``
messages, an ``http.disconnect`` at a chosen moment, the exact messages sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx

Message = dict[str, Any]


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    query_string: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    root_path: str = "",
    scheme: str = "http",
    server: tuple[str, int | None] | None = ("testserver", 80),
    client: tuple[str, int] | None = ("127.0.0.1", 54321),
    http_version: str = "1.1",
) -> dict[str, Any]:
    """An ASGI ``http`` scope, as a server would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": root_path,
        "headers": list(headers),
        "client": client,
        "server": server,
        "state": {},
    }


class Exchange:
    """The server side of one ASGI connection.

    ``receive()`` hands out the scripted ``incoming`` messages in order; once
    they are used up it blocks, like a real server, until the client goes away
    (:meth:`disconnect`) or the response is complete, then returns
    ``http.disconnect``. Every ``send()`` is recorded in :attr:`sent`.
    """

    def __init__(self, incoming: Iterable[Message] | None = None) -> None:
        if incoming is None:
            incoming = [{"type": "http.request", "body": b"", "more_body": False}]
        self.incoming = list(incoming)
        #: How many times the application called ``receive()``.
        self.receives = 0
        #: The messages the application sent, in order.
        self.sent: list[Message] = []
        #: Messages sent after the client disconnected (dropped).
        self.dropped: list[Message] = []
        #: Whether the client went away before the response was complete.
        self.disconnected = False
        self.gone = asyncio.Event()
        #: Set when the first body message is sent.
        self.first_body = asyncio.Event()

    async def receive(self) -> Message:
        self.receives += 1
        if self.incoming:
            message = self.incoming.pop(0)
            if message["type"] == "http.disconnect":
                self.disconnected = True
                self.gone.set()
            return message
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.disconnected:
            # Like uvicorn: messages for a client that is gone are dropped.
            self.dropped.append(message)
            return
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.first_body.set()
            if not message.get("more_body", False):
                self.gone.set()

    def disconnect(self) -> None:
        """The client goes away: pending and later ``receive()`` calls return."""
        self.disconnected = True
        self.gone.set()

    # Views on the recorded response.

    @property
    def start(self) -> Message:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return starts[0]

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.start["headers"]}

    @property
    def bodies(self) -> list[Message]:
        return [m for m in self.sent if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)


def body_messages(*chunks: bytes) -> list[Message]:
    """A request body as several ``http.request`` messages."""
    if not chunks:
        return [{"type": "http.request", "body": b"", "more_body": False}]
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


async def call(app: Any, scope: dict[str, Any], exchange: Exchange | None = None) -> Exchange:
    """Call ``app`` with one ASGI connection; return the exchange."""
    if exchange is None:
        exchange = Exchange()
    await app(scope, exchange.receive, exchange.send)
    return exchange


def asgi_client(app: Any, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in-process through ``app(scope, receive, send)``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", **kwargs
    )


def sqlalchemy_await(aw: Any) -> Any:
    """SQLAlchemy's own ``await_()``, as its asyncio drivers call it from sync code.

    It is ``await_only()`` before SQLAlchemy 2.1 (Flask-SQLAlchemy 3.1 allows 2.0).
    """
    try:
        from sqlalchemy.util import await_
    except ImportError:  # SQLAlchemy 2.0
        from sqlalchemy.util import await_only as await_
    return await_(aw)
