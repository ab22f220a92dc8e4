"""The ceiling: Flask's ``wsgi_app`` called inline on the event loop.

An ASGI app that reads the whole request body, builds the environ with
aioflask's :func:`~aioflask.core.http.build_environ`, calls the plain Flask app's
``wsgi_app`` right there on the loop (no greenlet, no thread: sync views only,
and ``/sleep`` is not served, since ``time.sleep`` would stall the loop), and
sends the response in one body message. No design that runs Flask's dispatch
per request can do less work.
"""

from __future__ import annotations

import io

from aioflask.core.http import build_environ

from .flask_app import app as flask_app

_wsgi_app = flask_app.wsgi_app


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    environ = build_environ(scope, io.BytesIO(body))
    head = {}

    def start_response(status, headers, exc_info=None):
        head["status"] = int(status[:3])
        head["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    iterable = _wsgi_app(environ, start_response)
    try:
        data = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    await send({"type": "http.response.start", **head})
    await send({"type": "http.response.body", "body": data})
