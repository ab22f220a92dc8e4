"""A raw ASGI app: no framework, the floor of what a Python ASGI app costs."""

from __future__ import annotations

import asyncio
import json

import jinja2

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATE, TEMPLATES, TITLE

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
_template = _env.get_template(TEMPLATE)
_PING = json.dumps(PING).encode()
_JSON = [(b"content-type", b"application/json")]
_HTML = [(b"content-type", b"text/html; charset=utf-8")]


async def _respond(send, body: bytes, headers) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def websocket(scope, receive, send) -> None:
    """``/ws/echo`` sends every message back; ``/ws/idle`` says "ready" and waits."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    echo = scope["path"] == "/ws/echo"
    if not echo:
        await send({"type": "websocket.send", "text": "ready"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if echo:
            await send({**message, "type": "websocket.send"})


async def app(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        await _respond(send, _PING, _JSON)
    elif path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        await _respond(send, _PING, _JSON)
    elif path == "/tmpl":
        html = _template.render(rows=ROWS, title=TITLE).encode()
        await _respond(send, html, _HTML)
    elif path == "/echo" and scope["method"] == "POST":
        size = 0
        more = True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _respond(send, json.dumps({"length": size}).encode(), _JSON)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
