"""aioflask: sync views where Flask code would be sync, ``async def`` where it awaits.

``BENCH_THREADS=N`` sets ``AIOFLASK_THREADS`` (the pool of ``@in_thread``) to N
threads, ``BENCH_THREADS=loop`` to None (asyncio's default executor,
``min(32, cpu_count + 4)`` threads); without it aioflask's default applies (32).
``BENCH_PATHSEND=off`` hides the server's ``http.response.pathsend`` extension
from the app, so that static files stream from Python as on other servers.
"""

from __future__ import annotations

import asyncio
import os
import time

from aioflask import Flask, in_thread, render_template, request, websocket

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATES, TITLE, db_sleep, static_dir

app = Flask(
    __name__,
    template_folder=str(TEMPLATES),
    static_folder=str(static_dir()),
    static_url_path="/static",
)
if os.environ.get("BENCH_GC_FREEZE") == "off":
    app.config["AIOFLASK_GC_FREEZE"] = False
if threads := os.environ.get("BENCH_THREADS"):
    app.config["AIOFLASK_THREADS"] = None if threads == "loop" else int(threads)


@app.get("/")
def ping():
    return PING


@app.get("/sleep")
async def sleep():
    await asyncio.sleep(SLEEP_SECONDS)
    return PING


@app.get("/tmpl")
async def tmpl():
    return await render_template("table.html", rows=ROWS, title=TITLE)


@app.post("/echo")
def echo():
    return {"length": len(request.get_data())}


@app.get("/block")
@in_thread
def block():
    time.sleep(SLEEP_SECONDS)
    return PING


@app.post("/upload")
def upload():
    """Read the body in 64 KiB chunks without keeping it (for memory.py)."""
    total = 0
    while chunk := request.stream.read(64 * 1024):
        total += len(chunk)
    return {"length": total}


@app.get("/db")
def db():
    # asyncpg: the query suspends this request only; a connection per request.
    db_sleep("asyncpg", pool_size=256)
    return PING


@app.websocket("/ws/echo")
async def ws_echo():
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)


@app.websocket("/ws/idle")
async def ws_idle():
    """Say "ready", then wait (for ws_memory.py)."""
    await websocket.accept()
    await websocket.send("ready")
    async for _ in websocket:
        pass


@app.websocket("/ws/idle-sync")
def ws_idle_sync():
    """The same as a sync handler, suspended in its bridge greenlet."""
    websocket.accept()
    websocket.send("ready")
    for _ in websocket:
        pass


if os.environ.get("BENCH_PATHSEND") == "off":
    _asgi_app = app.asgi_app

    async def _without_pathsend(scope, receive, send):
        extensions = scope.get("extensions") or {}
        if "http.response.pathsend" in extensions:
            others = {k: v for k, v in extensions.items() if k != "http.response.pathsend"}
            scope = {**scope, "extensions": others}
        await _asgi_app(scope, receive, send)

    app.asgi_app = _without_pathsend
