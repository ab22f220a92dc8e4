"""WebSockets in Flask: the :data:`websocket` proxy and the connection it shows.

:class:`WebSocket` is the connection (:class:`~aioflask.core.websocket.WebSocketConnection`,
which owns the protocol and its lifecycle) with Flask's parts: the session
cookie on accept, JSON with the app's provider, and a sync face
(:class:`SyncWebSocket`) for sync handlers. How handlers are routed is in
:mod:`aioflask.handshake`.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from inspect import iscoroutinefunction
from typing import Any, cast

import flask
from werkzeug.local import LocalProxy

from ._compat import current_object
from .core.bridge import await_
from .core.websocket import ENVIRON_KEY, WebSocketClosed, WebSocketConnection, WebSocketState

__all__ = [
    "ENVIRON_KEY",
    "SyncWebSocket",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketState",
    "call_handler",
    "current_websocket",
    "messages_until_closed",
    "websocket",
]


class WebSocket(WebSocketConnection):
    """One WebSocket connection, as :data:`websocket` shows it to a handler.

    Its methods are coroutines, for ``async def`` handlers (``await
    websocket.receive()``). In a sync handler :data:`websocket` is the
    connection's :class:`SyncWebSocket` face instead: the same methods, called
    without ``await``, wait through the bridge and return the result. (Sync
    code called from an async handler may use :attr:`sync`, or
    :func:`~aioflask.await_` on a method's coroutine.) Session changes made
    before :meth:`accept` are sent with it, as a cookie; later ones are not
    saved. See :class:`~aioflask.core.websocket.WebSocketConnection` for the
    lifecycle: a client that goes away cancels the handler at once.

    .. versionadded:: 0.5
    """

    async def receive_json(self) -> Any:
        """The next message, decoded as JSON (with the app's JSON provider)."""
        return flask.json.loads(await self.receive())

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON in a text message (with the app's JSON provider)."""
        await self.send(flask.json.dumps(obj))

    @property
    def sync(self) -> SyncWebSocket:
        """The sync face of this connection (what :data:`websocket` is in a sync handler)."""
        return SyncWebSocket(self)

    def accept_headers(self) -> list[tuple[bytes, bytes]]:
        """``Set-Cookie`` headers for the session, as Flask would save it now."""
        if not flask.has_request_context():
            return []
        app = current_object(flask.current_app)
        session = current_object(flask.session)
        if app.session_interface.is_null_session(session):
            return []
        response = app.response_class()
        app.session_interface.save_session(app, session, response)
        return [
            (b"set-cookie", v.encode("latin-1")) for v in response.headers.getlist("Set-Cookie")
        ]


class SyncWebSocket:
    """The sync face of a :class:`WebSocket`, for sync handlers.

    Each method waits for the connection's coroutine through the bridge
    (:func:`~aioflask.await_`) and returns its result; ``for message in
    websocket:`` iterates until the connection closes. Properties are the
    connection's.

    .. versionadded:: 0.5
    """

    __slots__ = ("connection",)

    def __init__(self, connection: WebSocket) -> None:
        #: The connection (the async face).
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        # Properties and attributes: scope, subprotocols, accepted, closed...
        return getattr(self.connection, name)

    def accept(self, subprotocol: str | None = None, headers: dict[str, str] | None = None) -> None:
        """:meth:`WebSocket.accept`, waited for."""
        await_(self.connection.accept(subprotocol, headers))

    def receive(self) -> str | bytes:
        """:meth:`WebSocket.receive`, waited for."""
        return await_(self.connection.receive())

    def receive_json(self) -> Any:
        """:meth:`WebSocket.receive_json`, waited for."""
        return await_(self.connection.receive_json())

    def send(self, data: str | bytes) -> None:
        """:meth:`WebSocket.send`, waited for."""
        await_(self.connection.send(data))

    def send_json(self, obj: Any) -> None:
        """:meth:`WebSocket.send_json`, waited for."""
        await_(self.connection.send_json(obj))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """:meth:`WebSocket.close`, waited for."""
        await_(self.connection.close(code, reason))

    def __iter__(self) -> Iterator[str | bytes]:
        """``for message in websocket:`` until the connection closes."""
        while True:
            try:
                yield self.receive()
            except WebSocketClosed:
                return

    def __bool__(self) -> bool:
        return True


#: Set while a sync handler runs: :data:`websocket` is then the sync face.
_sync_handler: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "aioflask.websocket_sync_handler", default=False
)


def call_handler(handler: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a WebSocket handler; a sync one sees :data:`websocket` as its sync face."""
    call = flask.current_app.ensure_sync(handler)
    if iscoroutinefunction(handler):
        return call(**kwargs)
    token = _sync_handler.set(True)
    try:
        return call(**kwargs)
    finally:
        _sync_handler.reset(token)


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
    if _sync_handler.get():
        return cast(WebSocket, ws.sync)
    return cast(WebSocket, ws)


#: The WebSocket connection of the current handshake request, like ``request``.
#: In a sync handler it is the connection's :class:`SyncWebSocket` face.
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
