"""A raw RSGI app (granian's native interface): the floor of a Python app on
granian without ASGI's scope and message dicts. Not a framework: it answers
the endpoints of raw_app.py the same way, to measure what RSGI would leave
for aioflask to gain over granian's ASGI interface."""

from __future__ import annotations

import asyncio
import json

from .common import ROWS, SLEEP_SECONDS, TITLE
from .raw_app import _HTML, _JSON, _PING, _template

_JSON_HEADERS = [(name.decode(), value.decode()) for name, value in _JSON]
_HTML_HEADERS = [(name.decode(), value.decode()) for name, value in _HTML]


def _respond(protocol, body: bytes, headers) -> None:
    # granian sets Content-Length itself for a bytes body.
    protocol.response_bytes(200, headers, body)


async def app(scope, protocol) -> None:
    if scope.proto != "http":
        return
    path = scope.path
    if path == "/":
        _respond(protocol, _PING, _JSON_HEADERS)
    elif path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        _respond(protocol, _PING, _JSON_HEADERS)
    elif path == "/tmpl":
        _respond(protocol, _template.render(rows=ROWS, title=TITLE).encode(), _HTML_HEADERS)
    elif path == "/echo" and scope.method == "POST":
        body = await protocol()
        _respond(protocol, json.dumps({"length": len(body)}).encode(), _JSON_HEADERS)
    else:
        protocol.response_empty(404, [])
