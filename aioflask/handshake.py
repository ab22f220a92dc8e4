"""The WebSocket handshake as a Flask request: routes and the view that runs a handler.

The handshake of an ASGI ``websocket`` connection is dispatched by Flask as a
``GET`` request whose URL scheme is ``ws`` or ``wss``; Werkzeug then matches
only rules added with ``websocket=True`` (what ``@app.websocket`` adds), so
converters, ``url_for``, blueprints, ``before_request`` hooks, error handlers
and teardown work as for any request. The handler runs in the view's place
and talks to the client through :data:`~aioflask.websocket` while that request
context is pushed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import flask

from .websockets import ENVIRON_KEY, call_handler, current_websocket

if TYPE_CHECKING:
    from flask.sansio.scaffold import Scaffold

__all__ = ["websocket_route"]

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
        if ENVIRON_KEY not in flask.request.environ:
            # A WebSocket handshake that reached the app through WSGI.
            flask.abort(
                501,
                "WebSockets need an ASGI server: serve this app with 'flask aiorun'"
                " or 'uvicorn module:app', not through WSGI.",
            )
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
