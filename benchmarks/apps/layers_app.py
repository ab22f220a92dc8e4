"""The layers of an aioflask request, each served alone (for server_instructions.py).

Every app answers ``GET /`` with the JSON ping of the other apps; each one
adds one layer to the one before, so the difference of two rows' instruction
counts is what that layer costs:

- ``raw``: a bare ASGI function (the server's own cost, and the floor).
- ``translate``: the ASGI <-> WSGI translation alone, inline on the loop: the
  request body reader, the environ, ``start_response`` and the response
  messages of :class:`aioflask.core.http.HTTPConnection`, around a WSGI function that returns the
  ping (no greenlet, no Flask).
- ``bridge``: :func:`aioflask.core.http.serve_http` with the same WSGI function:
  the translation run in a bridge greenlet, with the disconnect watcher.
- ``flask``: the same with plain Flask's ``wsgi_app`` (a ``def`` view that
  returns a dict): Flask's dispatch and the view, through aioflask's bridge.
- ``flask_str``: the same with a view that returns a constant string: the
  difference to ``flask`` is the view's JSON response.
- the full aioflask app is ``apps.aioflask_app:app``; the ceiling (Flask
  inline, no bridge) ``apps.ceiling_app:app``.

These reach into aioflask's core on purpose: they measure its parts.
"""

from __future__ import annotations

import json

import flask

from aioflask.core.body import InputStream
from aioflask.core.environ import build_environ
from aioflask.core.http import HTTPConnection, serve_http

from .common import PING

_PING = json.dumps(PING).encode()
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_PING)))]
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in _HEADERS]


def wsgi_ping(environ, start_response):
    start_response("200 OK", _HEADERS)
    return [_PING]


async def raw(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _RAW_HEADERS})
    await send({"type": "http.response.body", "body": _PING})


async def translate(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    connection = HTTPConnection(wsgi_ping, scope, receive, send)
    environ = build_environ(scope, InputStream(connection.receiver))
    # The ping's length is known: _run() returns the messages without a switch.
    for message in connection._run(environ):
        await send(message)
    connection.receiver.close()


async def bridge(scope, receive, send) -> None:
    if scope["type"] == "http":
        await serve_http(wsgi_ping, scope, receive, send)


flask_app = flask.Flask(__name__)


@flask_app.get("/")
def ping():
    return PING


flask_str_app = flask.Flask(__name__ + "_str")


@flask_str_app.get("/")
def ping_str():
    return '{"message": "Hello, World!"}'


async def flask_layer(scope, receive, send) -> None:
    if scope["type"] == "http":
        await serve_http(flask_app.wsgi_app, scope, receive, send)


async def flask_str(scope, receive, send) -> None:
    if scope["type"] == "http":
        await serve_http(flask_str_app.wsgi_app, scope, receive, send)
