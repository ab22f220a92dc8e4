"""Testing aioflask apps: the test client and CLI runner, for sync and async tests.

:class:`FlaskClient` is Flask's test client (cookies, redirects, sessions,
preserved contexts: all of it) whose requests go through the app's real ASGI
entry point, ``app(scope, receive, send)``, in-process; they return the
response in a sync test and an awaitable in an async one. It also sends
request bodies piece by piece (:meth:`FlaskClient.request`), opens WebSocket
sessions and runs the lifespan protocol.
"""

from __future__ import annotations

from .body import RequestStream as RequestStream
from .client import FlaskClient as FlaskClient
from .client import FlaskCliRunner as FlaskCliRunner
from .client import on_aioflask_client as on_aioflask_client
from .connection import TestHTTPConnection as TestHTTPConnection
from .http import StreamedResponse as StreamedResponse
from .http import environ_to_scope as environ_to_scope
from .websocket import LifespanError as LifespanError
from .websocket import WebSocketRejected as WebSocketRejected
from .websocket import WebSocketSession as WebSocketSession

__all__ = [
    "FlaskCliRunner",
    "FlaskClient",
    "LifespanError",
    "RequestStream",
    "StreamedResponse",
    "TestHTTPConnection",
    "WebSocketRejected",
    "WebSocketSession",
    "environ_to_scope",
    "on_aioflask_client",
]
