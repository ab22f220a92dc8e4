"""The app of ``soak.py``: every kind of request, and a debug endpoint.

``GET /debug/stats`` (this benchmark app only: never expose such a view in a
real app) reports the process's asyncio tasks, greenlets, open file
descriptors and RSS, and per stream kind how many bodies or handlers started
and how many ended (their ``finally`` ran).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import time

import greenlet

from aioflask import Flask, abort, request, sse_response, stream_with_context, websocket

app = Flask(__name__)
# /debug/live counts greenlets in gc.get_objects(), which leaves frozen objects out.
app.config["AIOFLASK_GC_FREEZE"] = False
#: Stream bodies and WebSocket handlers that started and ended, by ``?tag=``.
STARTED: collections.Counter[str] = collections.Counter()
ENDED: collections.Counter[str] = collections.Counter()


def tag(default: str) -> str:
    return request.args.get("tag", default)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@app.get("/debug/stats")
def stats():
    gc.collect()
    return {
        "tasks": len(asyncio.all_tasks()),
        "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss": _rss(),
        "cpu_seconds": time.process_time(),
        "open": {kind: STARTED[kind] - ENDED[kind] for kind in STARTED},
        "started": dict(STARTED),
    }


@app.get("/sync")
def sync_view():
    return {"ok": True}


@app.get("/async")
async def async_view():
    await asyncio.sleep(float(request.args.get("sleep", 0.001)))
    return {"ok": True}


@app.post("/echo")
def echo():
    return {"length": len(request.get_data())}


@app.get("/error")
def error():
    raise RuntimeError("soak: an error on purpose")


@app.get("/missing")
def missing():
    abort(404)


@app.get("/stream")
def stream():
    key = tag("stream")

    def generate():
        STARTED[key] += 1
        try:
            for _ in range(32):
                yield b"x" * 1024
        finally:
            ENDED[key] += 1

    return generate()


@app.get("/stream-context")
def stream_in_context():
    @stream_with_context
    def generate():
        key = tag("stream-context")
        STARTED[key] += 1
        try:
            for _ in range(32):
                yield request.path.encode() * 64
        finally:
            ENDED[key] += 1

    return generate()


@app.get("/astream")
def astream():
    key = tag("astream")

    async def generate():
        STARTED[key] += 1
        try:
            for _ in range(32):
                await asyncio.sleep(0.001)
                yield b"y" * 1024
        finally:
            ENDED[key] += 1

    return generate()


@app.get("/sse")
def sse():
    delay = float(request.args.get("delay", 0.002))
    count = int(request.args.get("n", 10))
    key = tag("sse")

    async def events():
        STARTED[key] += 1
        try:
            for i in range(count):
                await asyncio.sleep(delay)
                yield {"i": i}
        finally:
            ENDED[key] += 1

    return sse_response(events(), keepalive=0.5)


@app.websocket("/ws")
async def ws():
    key = tag("websocket")
    STARTED[key] += 1
    try:
        await websocket.accept()
        async for message in websocket:
            await websocket.send(message)
    finally:
        ENDED[key] += 1
