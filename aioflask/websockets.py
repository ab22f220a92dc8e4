"""WebSockets in Flask: the :data:`websocket` proxy and the connection it shows.

:class:`WebSocket` is the connection (:class:`~aioflask.core.websocket.WebSocketConnection`,
which owns the protocol and its lifecycle) with Flask's parts: the session
cookie on accept, JSON with the app's provider, the handshake request's
attributes (``websocket.args``, ``websocket.headers``...), and a sync face
(:class:`SyncWebSocket`) for sync handlers. Also the WebSocket context
helpers, as Quart names them (:func:`has_websocket_context`,
:func:`after_this_websocket`, :func:`copy_current_websocket_context`). How
handlers are routed, and the WebSocket hooks, are in :mod:`aioflask.handshake`.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any, TypeVar, cast

import flask
from werkzeug.local import LocalProxy

from ._compat import current_object
from .core.bridge import await_, run_sync
from .core.dual import dual
from .core.websocket import ENVIRON_KEY, WebSocketClosed, WebSocketConnection, WebSocketState

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers, ImmutableMultiDict, MultiDict
    from werkzeug.routing import Rule

__all__ = [
    "ENVIRON_KEY",
    "SyncWebSocket",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketState",
    "after_this_websocket",
    "call_handler",
    "copy_current_websocket_context",
    "current_websocket",
    "handshake_connection",
    "has_websocket_context",
    "messages_until_closed",
    "websocket",
]

F = TypeVar("F", bound=Callable[..., Any])


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

    The attributes of the handshake request are the connection's too, as in
    Quart: ``websocket.args``, ``.headers``, ``.cookies``, ``.path``,
    ``.full_path``, ``.url``, ``.host``, ``.scheme``, ``.query_string``,
    ``.remote_addr``, ``.endpoint``, ``.view_args``... are those of
    :attr:`request` (the same objects as :data:`~flask.request`'s while the
    handshake runs).

    .. versionadded:: 0.5
    """

    #: The handshake request (:data:`~flask.request` while the handler
    #: runs); ``None`` until the app makes its request context.
    request: flask.Request | None = None

    if TYPE_CHECKING:  # attributes of `request`, found by __getattr__
        args: MultiDict[str, str]
        headers: Headers
        cookies: ImmutableMultiDict[str, str]
        path: str
        full_path: str
        url: str
        base_url: str
        root_url: str
        host_url: str
        host: str
        scheme: str
        query_string: bytes
        remote_addr: str | None
        access_route: list[str]
        root_path: str
        method: str
        environ: dict[str, Any]
        endpoint: str | None
        blueprint: str | None
        blueprints: list[str]
        view_args: dict[str, Any] | None
        url_rule: Rule | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Functions :func:`after_this_websocket` registered, in order.
        self.after_websocket_functions: list[Callable[[Any], Any]] = []
        #: Whether the handshake reached its WebSocket route (and so the
        #: WebSocket hooks run for it).
        self.dispatched = False

    def __getattr__(self, name: str) -> Any:
        # Only names the connection lacks: the handshake request's attributes.
        request = self.request
        if request is not None and not name.startswith("_"):
            try:
                return getattr(request, name)
            except AttributeError:
                pass
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def requested_subprotocols(self) -> list[str]:
        """:attr:`subprotocols`, by its name in Quart."""
        return self.subprotocols

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


def handshake_connection() -> WebSocket | None:
    """The connection of the current request if it is a WebSocket handshake, else ``None``."""
    try:
        request = current_object(flask.request)
    except RuntimeError:
        return None
    ws: WebSocket | None = request.environ.get(ENVIRON_KEY)
    return ws


def current_websocket() -> WebSocket:
    """The connection of the current handshake request (what :data:`websocket` proxies)."""
    ws = handshake_connection()
    if ws is None:
        raise RuntimeError(
            "Working outside of a WebSocket connection: 'websocket' is available in"
            " WebSocket handlers and in the hooks that run for their handshake."
        )
    if _sync_handler.get():
        return cast(WebSocket, ws.sync)
    return ws


#: The WebSocket connection of the current handshake request, like ``request``.
#: In a sync handler it is the connection's :class:`SyncWebSocket` face.
#: ``bool(websocket)`` tells a WebSocket handshake from an HTTP request.
websocket: WebSocket = LocalProxy(current_websocket)  # type: ignore[assignment]


def has_websocket_context() -> bool:
    """Whether a WebSocket handshake is being handled: :data:`websocket` is usable.

    During a handshake :func:`~flask.has_request_context` is true too (the
    handshake is a Flask request), unlike in Quart.

    .. versionadded:: 0.5
    """
    return handshake_connection() is not None


def after_this_websocket(f: F) -> F:
    """Call ``f(response)`` after the current WebSocket handler, like
    :func:`~flask.after_this_request` for a request.

    It runs before the ``after_websocket`` functions and, like them, gets the
    handshake's response, ``None`` once the connection was accepted, and
    returns it (or another response, for a refused handshake).

    .. versionadded:: 0.5
    """
    ws = handshake_connection()
    if ws is None:
        raise RuntimeError(
            "'after_this_websocket' can only be used while a WebSocket handshake is"
            " handled (in a WebSocket handler or its hooks); in an HTTP view use"
            " 'after_this_request'."
        )
    ws.after_websocket_functions.append(f)
    return f


def copy_current_websocket_context(f: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``f`` run in a copy of the current WebSocket context.

    For a task the handler starts, which would otherwise see no
    :data:`websocket`, ``request``, ``session`` or ``g``::

        @copy_current_websocket_context
        async def push_updates():
            async for update in updates():
                await websocket.send_json(update)

        task = asyncio.create_task(push_updates())

    Called in a coroutine the wrapper returns an awaitable (as Quart's);
    called from sync code it returns ``f``'s result, like
    :func:`~flask.copy_current_request_context`, which pushes the copy. ``f``
    may be sync or ``async def``. Popping the copy runs the teardown
    functions, as with Flask's.

    .. versionadded:: 0.5
    """
    if not has_websocket_context():
        raise RuntimeError(
            "'copy_current_websocket_context' can only be used while a WebSocket"
            " handshake is handled (in a WebSocket handler or its hooks)."
        )
    in_copy = flask.copy_current_request_context(f)

    @dual(in_copy, call=f"{getattr(f, '__name__', 'f')}(...)")
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await run_sync(in_copy, *args, **kwargs)

    return functools.wraps(f)(wrapper)


async def messages_until_closed(
    receive: Callable[[], Awaitable[str | bytes]],
) -> AsyncIterator[str | bytes]:
    """Yield what ``receive()`` returns until it raises :exc:`WebSocketClosed`."""
    while True:
        try:
            yield await receive()
        except WebSocketClosed:
            return
