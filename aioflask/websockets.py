"""The ASGI WebSocket protocol: the ``websocket`` proxy and its connection.

A :class:`WebSocket` owns the ``receive`` and ``send`` callables of one ASGI
``websocket`` connection. Once accepted, a reader task keeps one ``receive()``
pending: client messages wait in a bounded queue, and a disconnect cancels
the handler at once, wherever it awaits. How handlers are routed and run is
in :mod:`aioflask.handshake`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import flask
from werkzeug.local import LocalProxy

from .bridge import await_
from .typing import Receive, Send, WebSocketScope

__all__ = [
    "ENVIRON_KEY",
    "WebSocket",
    "WebSocketClosed",
    "current_websocket",
    "messages_until_closed",
    "websocket",
]

P = ParamSpec("P")
T = TypeVar("T")

#: The environ key holding the connection's :class:`WebSocket`.
ENVIRON_KEY = "aioflask.websocket"
#: The ASGI extension that lets a handshake be refused with any HTTP response.
HTTP_RESPONSE_EXTENSION = "websocket.http.response"

_END = object()  # queued when the connection closes


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


_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def _called_from_async(depth: int) -> bool:
    """Whether the function ``depth`` frames up is ``async def`` code."""
    return bool(sys._getframe(depth + 1).f_code.co_flags & _ASYNC_CODE)


def _dual(
    method: Callable[Concatenate[WebSocket, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[WebSocket, P], Any]:
    """Let sync code call a coroutine method without ``await``.

    Called from ``async def`` code, the method returns its coroutine; called
    from a plain function (a sync handler, or a helper it calls), it waits
    through the bridge and returns the result.
    """

    @functools.wraps(method)
    def wrapper(self: WebSocket, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        coro = method(self, *args, **kwargs)
        return coro if _called_from_async(1) else await_(coro)

    return wrapper


class WebSocket:
    """One WebSocket connection, as :data:`websocket` shows it to a handler.

    Its methods are coroutines for ``async def`` handlers (``await
    websocket.receive()``); sync handlers call the same methods without
    ``await`` and get the result (they wait through the bridge).
    ``receive()`` and ``send()`` accept the connection first if the handler
    has not. Once the connection is closed they raise
    :exc:`WebSocketClosed`. A client that goes away cancels the handler at
    once, wherever it awaits (messages it has not read yet are dropped);
    :attr:`close_code` then tells why.

    .. versionadded:: 0.5
    """

    #: Messages received but not yet read by the app, at most; past that the
    #: server stops reading from the client (TCP backpressure). A disconnect
    #: behind a full queue is then seen when the app reads or sends.
    max_queue = 32
    #: The largest message the client may send, in bytes (UTF-8 for text);
    #: a larger one closes the connection with 1009. Set at :meth:`accept`
    #: from ``WEBSOCKET_MAX_MESSAGE_SIZE``; None: no limit.
    max_message_size: int | None = None

    def __init__(self, scope: WebSocketScope, receive: Receive, send: Send) -> None:
        #: The ASGI scope of the connection.
        self.scope = scope
        self._receive = receive
        self._send = send
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._space = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._handler: asyncio.Task[Any] | None = None
        self._accepted = False
        self._closed = False
        #: The client went away and the handler was cancelled because of it.
        self.cancelled = False
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
        return self._closed

    @_dual
    async def accept(
        self, subprotocol: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Accept the handshake.

        Session changes made so far are sent with it, as a cookie; later ones
        are not saved.

        :param subprotocol: one of :attr:`subprotocols`, to speak with the client.
        :param headers: extra headers for the handshake response.
        """
        if self._accepted:
            raise RuntimeError("The WebSocket connection is already accepted.")
        if self._closed:
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"The client did not offer the subprotocol {subprotocol!r}.")
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        message: Any = {
            "type": "websocket.accept",
            "subprotocol": subprotocol,
            "headers": raw + _session_cookies(),
        }
        await self._send_message(message)
        self._accepted = True
        if flask.has_app_context():
            self.max_message_size = flask.current_app.config.get("WEBSOCKET_MAX_MESSAGE_SIZE")
        self._reader = asyncio.ensure_future(self._read())

    @_dual
    async def receive(self) -> str | bytes:
        """The next message from the client: ``str`` for text, ``bytes`` for binary."""
        if not self._accepted:
            await self.accept()
        if self._closed and self._queue.empty():
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        data = await self._queue.get()
        self._space.set()
        if data is _END:
            self._queue.put_nowait(_END)  # for the next caller
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        return cast("str | bytes", data)

    @_dual
    async def receive_json(self) -> Any:
        """The next message, decoded as JSON (with the app's JSON provider)."""
        return flask.json.loads(await self.receive())

    @_dual
    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        if not self._accepted:
            await self.accept()
        if self._closed:
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        if isinstance(data, str):
            message: Any = {"type": "websocket.send", "text": data}
        elif isinstance(data, (bytes, bytearray, memoryview)):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(
                f"send() takes str or bytes, not {type(data).__name__}; see send_json()."
            )
        await self._send_message(message)

    @_dual
    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON in a text message (with the app's JSON provider)."""
        await self.send(flask.json.dumps(obj))

    @_dual
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; before :meth:`accept`, refuse the handshake (403).

        Closing again does nothing.
        """
        if self._closed:
            return
        self._set_closed(code, reason)
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            pass  # the client is already gone

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """``async for message in websocket:`` until the connection closes."""
        return messages_until_closed(self.receive)

    def __iter__(self) -> Iterator[str | bytes]:
        """``for message in websocket:`` in a sync handler."""
        if _called_from_async(1):
            raise TypeError("Use 'async for' over the WebSocket in async code.")
        while True:
            try:
                yield self.receive()
            except WebSocketClosed:
                return

    def _set_closed(self, code: int, reason: str) -> None:
        self._closed = True
        self.close_code = code
        self.close_reason = reason
        self._queue.put_nowait(_END)

    async def _send_message(self, message: Any) -> None:
        try:
            await self._send(message)
        except OSError as exc:  # servers raise an OSError once the client is gone
            # A handler that sends gets the error; anybody else's send cancels it.
            self._disconnected(1006, "", cancel=asyncio.current_task() is not self._handler)
            raise WebSocketClosed(1006) from exc

    async def _read(self) -> None:
        """Read client messages into the queue; on disconnect, cancel the handler."""
        while True:
            while self._queue.qsize() >= self.max_queue:
                self._space.clear()
                await self._space.wait()
            message = await self._receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                data = (message.get("bytes") or b"") if text is None else text
                if self.max_message_size is not None and _too_big(data, self.max_message_size):
                    await self._refuse_message()
                    return
                self._queue.put_nowait(data)
            elif message["type"] == "websocket.disconnect":
                self._disconnected(message.get("code", 1005), message.get("reason") or "")
                return

    async def _refuse_message(self) -> None:
        """Close with 1009 (message too big), then cancel the handler as for a disconnect."""
        close: Any = {"type": "websocket.close", "code": 1009, "reason": "message too big"}
        try:
            # The closing handshake first: once the handler ends, the server
            # drops the connection. Shielded: the handler may end meanwhile.
            await asyncio.shield(self._send(close))
        except OSError:
            pass
        self._disconnected(1009, "message too big")

    def _disconnected(self, code: int, reason: str, cancel: bool = True) -> None:
        if self._closed:
            return  # the app closed first: this is the server confirming it
        self._set_closed(code, reason)
        if cancel and self._handler is not None:
            self.cancelled = True
            self._handler.cancel()

    async def _finish(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """End the connection once the handshake request is over."""
        if self._reader is not None:
            self._reader.cancel()
        if self._closed:
            return
        if self._accepted:
            # 101: the handler returned; else the status of the error response.
            code = 1000 if status == 101 else 1011 if status >= 500 else 1008
            await self.close(code)
            return
        self._set_closed(1000, "")
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


def _too_big(data: str | bytes, limit: int) -> bool:
    if isinstance(data, str) and len(data) <= limit < 4 * len(data):
        return len(data.encode()) > limit  # up to 4 bytes per character
    return len(data) > limit


def _session_cookies() -> list[tuple[bytes, bytes]]:
    """``Set-Cookie`` headers for the session, as Flask would save it now."""
    if not flask.has_request_context():
        return []
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    if app.session_interface.is_null_session(session):
        return []
    response = app.response_class()
    app.session_interface.save_session(app, session, response)
    return [(b"set-cookie", v.encode("latin-1")) for v in response.headers.getlist("Set-Cookie")]


def current_websocket() -> WebSocket:
    """The connection of the current handshake request (what :data:`websocket` proxies)."""
    try:
        ws = flask.request.environ.get(ENVIRON_KEY)
    except RuntimeError:
        ws = None
    if ws is None:
        raise RuntimeError(
            "Working outside of a WebSocket connection: 'websocket' is available in"
            " WebSocket handlers and in the hooks that run for their handshake."
        )
    return cast(WebSocket, ws)


#: The WebSocket connection of the current handshake request, like ``request``.
#: ``bool(websocket)`` tells a WebSocket handshake from an HTTP request.
websocket: WebSocket = LocalProxy(current_websocket)  # type: ignore[assignment]


async def messages_until_closed(
    receive: Callable[[], Awaitable[str | bytes]],
) -> AsyncIterator[str | bytes]:
    """Yield what ``receive()`` returns until it raises :exc:`WebSocketClosed`."""
    while True:
        try:
            yield await receive()
        except WebSocketClosed:
            return
