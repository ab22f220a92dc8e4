"""The WebSocket handshake as a Flask request: routes, handlers, serving.

The handshake of an ASGI ``websocket`` connection is dispatched by Flask as a
``GET`` request whose URL scheme is ``ws`` or ``wss``; Werkzeug then matches
only rules added with ``websocket=True`` (what ``@app.websocket`` adds), so
converters, ``url_for``, blueprints, ``before_request`` hooks, error handlers
and teardown work as for any request. The handler runs in the view's place
and talks to the client through :data:`~aioflask.websocket` while that request
context is pushed.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import flask

from .core.bridge import drive
from .core.http import _uncancel, build_environ
from .core.types import HTTPScope, Receive, Send, WebSocketScope, WSGIApp, WSGIEnviron
from .websockets import ENVIRON_KEY, WebSocket, call_handler, current_websocket

if TYPE_CHECKING:
    from flask.sansio.scaffold import Scaffold

__all__ = ["serve_websocket", "websocket_route"]

F = TypeVar("F", bound=Callable[..., Any])


class _HandshakeView:
    """The view Flask dispatches to for a WebSocket rule; runs the handler."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.handler = handler
        functools.update_wrapper(self, handler)

    def __eq__(self, other: object) -> bool:
        # A handler registered for several rules is the same endpoint function.
        return isinstance(other, _HandshakeView) and other.handler == self.handler

    def __hash__(self) -> int:
        return hash(self.handler)

    def __call__(self, **kwargs: Any) -> Any:
        ws = current_websocket()
        app = flask.current_app
        rv = call_handler(self.handler, kwargs)
        if ws.accepted:
            # The handshake response went out at accept(); after_request sees this.
            return app.response_class(status=101)
        if ws.closed or rv is None:
            return app.response_class(status=403)
        return rv


def websocket_route(scaffold: Scaffold, rule: str, options: dict[str, Any]) -> Callable[[F], F]:
    """The decorator of ``app.websocket(rule, **options)`` and ``bp.websocket``."""

    def decorator(f: F) -> F:
        endpoint = options.pop("endpoint", None)
        options.setdefault("provide_automatic_options", False)
        scaffold.add_url_rule(rule, endpoint, _HandshakeView(f), websocket=True, **options)
        return f

    return decorator


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


async def serve_websocket(
    wsgi_app: WSGIApp, scope: WebSocketScope, receive: Receive, send: Send
) -> None:
    """Serve one ASGI WebSocket connection with a Flask app's ``wsgi_app``.

    A handshake the handler does not accept is refused with its response
    (through the ``websocket.http.response`` extension, or a ``403`` from the
    server without it); unknown URLs are refused with ``404``. A client that
    goes away cancels the handler.
    """
    if (await receive())["type"] != "websocket.connect":
        return  # gone before the handshake
    ws = WebSocket(scope, receive, send)
    http_scope = cast(HTTPScope, {**scope, "method": "GET"})
    environ = build_environ(http_scope, io.BytesIO())
    environ[ENVIRON_KEY] = ws
    ws._handler = asyncio.current_task()
    try:
        status, headers, body = await drive(_dispatch, (wsgi_app, environ))
    except asyncio.CancelledError:
        if not ws.cancelled or _uncancel() > 0:
            raise
        return  # the client is gone: nothing more to send
    finally:
        ws._handler = None
        if ws._reader is not None:
            ws._reader.cancel()
    await ws._finish(status, headers, body)
