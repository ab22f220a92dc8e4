"""The ASGI ``websocket`` protocol: one :class:`WebSocketConnection` per scope.

The connection owns its lifecycle (:class:`WebSocketState`): the handshake,
dispatched as a ``GET`` request to a WSGI application on the bridge,
accepting or refusing it, messages both ways, close codes, and cancelling the
handler when the client goes away. From the ``websocket.connect`` message on,
a reader task keeps one ``receive()`` pending, so a disconnect is seen at once,
before ``accept()`` or with messages unread. This module imports nothing from
Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import enum
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from .bridge import Cancellation, drive
from .environ import build_environ
from .types import HTTPScope, Receive, Send, WebSocketScope, WSGIApp, WSGIEnviron

__all__ = [
    "ENVIRON_KEY",
    "WebSocketClosed",
    "WebSocketConnection",
    "WebSocketState",
]

#: The environ key holding the connection.
ENVIRON_KEY = "aioflask.websocket"
#: The ASGI extension that lets a handshake be refused with any HTTP response.
HTTP_RESPONSE_EXTENSION = "websocket.http.response"
#: The close code when the client sent more than ``max_queue`` messages unread.
TOO_MANY_UNREAD = 1008
#: The close code when the client sent a message over ``max_message_size``.
TOO_BIG = 1009

_END = object()  # queued when the connection closes


class WebSocketState(enum.Enum):
    """Where a :class:`WebSocket` is in its lifecycle."""

    #: The handshake request runs; nothing was sent yet.
    CONNECTING = "connecting"
    #: Accepted: messages go both ways.
    CONNECTED = "connected"
    #: Closed by the app, or the handshake refused.
    CLOSED = "closed"
    #: The client went away (or its messages overflowed): the handler is
    #: cancelled until it ends, and every send or receive raises.
    DISCONNECTED = "disconnected"


class WebSocketClosed(ConnectionError):
    """The WebSocket connection is closed, by the client or by the app.

    Raised by :meth:`WebSocket.receive` and :meth:`WebSocket.send`.

    .. versionadded:: 0.5
    """

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        #: The close code (1000 normal, 1001 going away, 1006 connection lost...).
        self.code = code
        #: The close reason, ``""`` if none was given.
        self.reason = reason


class WebSocketConnection:
    """One ASGI WebSocket connection, served by a WSGI application on the bridge.

    ``await WebSocketConnection(wsgi_app, scope, receive, send)()`` receives
    ``websocket.connect``, starts the reader, and dispatches the handshake as a
    ``GET`` request (the connection is in the environ under
    :data:`ENVIRON_KEY`); the application accepts, talks, closes or refuses
    through the connection's coroutine methods. ``receive()`` and ``send()``
    accept first if the handshake is not accepted yet; once the connection is
    closed they raise :exc:`WebSocketClosed`. A client that goes away cancels
    the request at once, wherever it awaits, before or after ``accept()``
    and whether or not it reads (level-triggered: see
    :class:`~aioflask.core.bridge.Cancellation`); :attr:`close_code` then tells why.

    .. versionadded:: 0.5
    """

    #: Messages received but not yet read by the app, at most. The reader
    #: keeps receiving (to see a disconnect at once); a client that sends
    #: more than this while the app does not read is closed with code 1008.
    max_queue = 32
    _accepted = False

    def __init__(
        self,
        app: WSGIApp,
        scope: WebSocketScope,
        receive: Receive,
        send: Send,
        max_message_size: int | None = None,
    ) -> None:
        self.app = app
        #: The largest message the client may send, in bytes (UTF-8 for
        #: text); a larger one closes the connection with 1009. None: no limit.
        self.max_message_size = max_message_size
        #: The ASGI scope of the connection.
        self.scope = scope
        self._receive = receive
        self._send = send
        #: Where the connection is in its lifecycle.
        self.state = WebSocketState.CONNECTING
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._handler: asyncio.Task[Any] | None = None
        self._cancellation: Cancellation | None = None
        #: The close code once the connection is closed, else ``None``.
        self.close_code: int | None = None
        #: The close reason once the connection is closed.
        self.close_reason = ""

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols", ()))

    @property
    def accepted(self) -> bool:
        """Whether the handshake was accepted."""
        return self._accepted

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (or the handshake was refused)."""
        return self.state in (WebSocketState.CLOSED, WebSocketState.DISCONNECTED)

    @property
    def cancelled(self) -> bool:
        """Whether the client went away and the handler was cancelled because of it."""
        return self._cancellation is not None

    async def accept(
        self, subprotocol: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Accept the handshake.

        :param subprotocol: one of :attr:`subprotocols`, to speak with the client.
        :param headers: extra headers for the handshake response.
        """
        if self._accepted:
            raise RuntimeError("The WebSocket connection is already accepted.")
        self._raise_if_closed()
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"The client did not offer the subprotocol {subprotocol!r}.")
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        message: Any = {
            "type": "websocket.accept",
            "subprotocol": subprotocol,
            "headers": raw + self.accept_headers(),
        }
        await self._send_message(message)
        self._accepted = True
        self.state = WebSocketState.CONNECTED

    async def receive(self) -> str | bytes:
        """The next message from the client: ``str`` for text, ``bytes`` for binary."""
        if not self._accepted:
            await self.accept()
        if self.closed and self._queue.empty():
            self._raise_if_closed()
        data = await self._queue.get()
        if data is _END:
            self._queue.put_nowait(_END)  # for the next caller
            self._raise_if_closed()
        return cast("str | bytes", data)

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        if not self._accepted:
            await self.accept()
        self._raise_if_closed()
        if isinstance(data, str):
            message: Any = {"type": "websocket.send", "text": data}
        elif isinstance(data, (bytes, bytearray, memoryview)):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(
                f"send() takes str or bytes, not {type(data).__name__}; see send_json()."
            )
        await self._send_message(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; before :meth:`accept`, refuse the handshake (403).

        Closing again does nothing.
        """
        if self.closed:
            return
        self._set_closed(WebSocketState.CLOSED, code, reason)
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            pass  # the client is already gone

    def accept_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers added to every handshake response (none here)."""
        return []

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """``async for message in websocket:`` until the connection closes."""
        return _messages(self)

    def __iter__(self) -> Iterator[str | bytes]:
        raise TypeError(
            "Use 'async for' over the WebSocket in async code ('for' in a sync handler)."
        )

    def _raise_if_closed(self) -> None:
        if self.closed:
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)

    def _set_closed(self, state: WebSocketState, code: int, reason: str) -> None:
        self.state = state
        self.close_code = code
        self.close_reason = reason
        self._queue.put_nowait(_END)

    async def _send_message(self, message: Any) -> None:
        """Send to the server: the one place messages of the app go out."""
        try:
            await self._send(message)
        except OSError as exc:  # servers raise an OSError once the client is gone
            # A handler that sends gets the error; anybody else's send cancels it.
            self._disconnected(1006, "", cancel=asyncio.current_task() is not self._handler)
            raise WebSocketClosed(1006) from exc

    async def _read(self) -> None:
        """Receive client messages into the queue; a disconnect cancels the handler.

        It never stops receiving while the connection lives: a reader that
        waited for room would not see the client go.
        """
        limit = self.max_message_size
        while True:
            message = await self._receive()
            if message["type"] == "websocket.receive":
                if self._queue.qsize() >= self.max_queue:
                    await self._refuse(
                        TOO_MANY_UNREAD, f"more than {self.max_queue} messages unread"
                    )
                    return
                text = message.get("text")
                data = (message.get("bytes") or b"") if text is None else text
                if limit is not None and _too_big(data, limit):
                    await self._refuse(TOO_BIG, "message too big")
                    return
                self._queue.put_nowait(data)
            elif message["type"] == "websocket.disconnect":
                self._disconnected(message.get("code", 1005), message.get("reason") or "")
                return

    async def _refuse(self, code: int, reason: str) -> None:
        """Close for what the client sent, then cancel the handler as for a disconnect."""
        if self.closed:
            return  # the app closed first
        close: Any = {"type": "websocket.close", "code": code, "reason": reason}
        try:
            # The closing handshake first: once the handler ends, the server
            # drops the connection. Shielded: the handler may end meanwhile
            # (and cancel this reader).
            await asyncio.shield(self._send(close))
        except OSError:
            pass
        self._disconnected(code, reason)

    def _disconnected(self, code: int, reason: str, cancel: bool = True) -> None:
        if self.closed:
            return  # the app closed first: this is the server confirming it
        self._set_closed(WebSocketState.DISCONNECTED, code, reason)
        if cancel and self._handler is not None and self._cancellation is None:
            self._cancellation = Cancellation(self._handler)
            self._cancellation.start()

    # -- serving the connection ---------------------------------------------------------

    async def __call__(self) -> None:
        if (await self._receive())["type"] != "websocket.connect":
            return  # gone before the handshake
        http_scope = cast(HTTPScope, {**self.scope, "method": "GET"})
        environ = build_environ(http_scope, io.BytesIO())
        environ[ENVIRON_KEY] = self
        self._handler = asyncio.current_task()
        self._reader = asyncio.ensure_future(self._read())
        try:
            status, headers, body = await drive(_dispatch, (self.app, environ))
        except asyncio.CancelledError:
            if self._cancellation is None or not self._cancellation.absorb():
                raise
            return  # the client is gone: nothing more to send
        finally:
            self._handler = None
            if self._cancellation is not None:
                self._cancellation.stop()
            self._reader.cancel()
        await self._finish(status, headers, body)

    async def _finish(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """End the connection once the handshake request is over."""
        if self.closed:
            return
        if self._accepted:
            # 101: the handler returned; else the status of the error response.
            code = 1000 if status == 101 else 1011 if status >= 500 else 1008
            await self.close(code)
            return
        self._set_closed(WebSocketState.CLOSED, 1000, "")
        try:
            if HTTP_RESPONSE_EXTENSION in (self.scope.get("extensions") or {}):
                start: Any = {"type": "websocket.http.response.start", "status": status}
                start["headers"] = headers
                await self._send(start)
                end: Any = {"type": "websocket.http.response.body", "body": body}
                await self._send(end)
            else:
                await self._send({"type": "websocket.close", "code": 1000, "reason": ""})
        except OSError:
            pass


def _dispatch(wsgi_app: WSGIApp, environ: WSGIEnviron) -> tuple[int, list[Any], bytes]:
    """Run the handshake request through the WSGI app (in a bridge greenlet)."""
    result: list[Any] = [500, []]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        result[:] = [
            int(status[:3]),
            [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
        ]
        return None

    iterable = wsgi_app(environ, start_response)
    try:
        body = b"".join(iterable)  # a refusal's body; empty once accepted
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return result[0], result[1], body


def _too_big(data: str | bytes, limit: int) -> bool:
    if isinstance(data, str) and len(data) <= limit < 4 * len(data):
        return len(data.encode()) > limit  # up to 4 bytes per character
    return len(data) > limit


async def _messages(connection: WebSocketConnection) -> AsyncIterator[str | bytes]:
    while True:
        try:
            yield await connection.receive()
        except WebSocketClosed:
            return
