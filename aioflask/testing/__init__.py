"""Testing aioflask apps: the async test client and CLI runner.

:class:`FlaskClient` is Flask's test client (cookies, redirects, sessions,
preserved contexts: all of it) with ``await``-able requests that go through
the app's real ASGI entry point, ``app(scope, receive, send)``, in-process;
it also opens WebSocket sessions and runs the lifespan protocol.
"""

from __future__ import annotations

from .client import FlaskClient as FlaskClient
from .client import FlaskCliRunner as FlaskCliRunner
from .client import on_aioflask_client as on_aioflask_client
from .http import StreamedResponse as StreamedResponse
from .http import environ_to_scope as environ_to_scope
from .websocket import LifespanError as LifespanError
from .websocket import WebSocketRejected as WebSocketRejected
from .websocket import WebSocketSession as WebSocketSession

__all__ = [
    "FlaskCliRunner",
    "FlaskClient",
    "LifespanError",
    "StreamedResponse",
    "WebSocketRejected",
    "WebSocketSession",
    "environ_to_scope",
    "on_aioflask_client",
]
