"""Streams and WebSockets that never end by themselves, for clients that leave.

Every stream kind aioflask serves yields forever, with ``delay`` seconds
between items (0: back to back). ``/debug/live`` reports how many of them
still run (their ``finally`` has not run), the tasks of the loop and the
server's CPU time, so a test can prove that nothing runs on once its clients
are gone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aioflask import (
    Flask,
    await_,
    sse_response,
    stream_template_string,
    stream_with_context,
    websocket,
)

app = Flask(__name__)

#: Streams and handlers running now, by kind.
running: dict[str, int] = {}
#: Those that ended (their finally ran), by kind.
ended: dict[str, int] = {}
ITEM = "x" * 1024


def _enter(kind: str) -> None:
    running[kind] = running.get(kind, 0) + 1


def _leave(kind: str) -> None:
    running[kind] -= 1
    ended[kind] = ended.get(kind, 0) + 1


async def _items(kind: str, delay: float, item: str = ITEM) -> Any:
    _enter(kind)
    try:
        while True:
            await asyncio.sleep(delay)
            yield item
    finally:
        _leave(kind)


async def _swallowing(kind: str, delay: float) -> Any:
    """Items forever; swallows the first cancellation and goes on.

    As ``asyncio.wait_for`` does on Python 3.11 when the awaited future has
    just completed (so an SSE stream's wait for its next event may).
    """
    _enter(kind)
    try:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True
            yield ITEM
    finally:
        _leave(kind)


@app.get("/debug/live")
def live() -> dict[str, Any]:
    return {
        "running": sum(running.values()),
        "by_kind": running,
        "ended": ended,
        "tasks": len(asyncio.all_tasks()),
        "cpu": time.process_time(),
    }


@app.get("/stream/sync/<float:delay>")
def stream_sync(delay: float) -> Any:
    def generate() -> Any:
        _enter("sync")
        try:
            while True:
                if delay:
                    await_(asyncio.sleep(delay))
                yield ITEM
        finally:
            _leave("sync")

    return generate()


@app.get("/stream/async/<float:delay>")
def stream_async(delay: float) -> Any:
    return _items("async", delay)


@app.get("/stream/sse/<float:delay>")
def stream_sse(delay: float) -> Any:
    # Small events, and the default keep-alive (15 s): each wait for the next
    # event goes through asyncio.wait_for, which can swallow a cancellation.
    return sse_response(_items("sse", delay, "x"))


@app.get("/stream/sse-no-keepalive/<float:delay>")
def stream_sse_no_keepalive(delay: float) -> Any:
    return sse_response(_items("sse-no-keepalive", delay), keepalive=None)


@app.get("/stream/sse-keepalive/<float:delay>")
def stream_sse_keepalive(delay: float) -> Any:
    # A keep-alive shorter than the gap between events: the wait for the next
    # event times out (asyncio.wait_for) all the time.
    return sse_response(_items("sse-keepalive", delay), keepalive=0.002)


@app.get("/stream/swallow/<float:delay>")
def stream_swallow(delay: float) -> Any:
    return _swallowing("swallow", delay)


@app.get("/stream/sse-swallow/<float:delay>")
def stream_sse_swallow(delay: float) -> Any:
    return sse_response(_swallowing("sse-swallow", delay))


@app.get("/stream/with-context/<float:delay>")
def stream_context(delay: float) -> Any:
    return stream_with_context(_items("with-context", delay))


@app.get("/stream/template/<float:delay>")
async def stream_template(delay: float) -> Any:
    source = "{% for item in items %}{{ item }}{% endfor %}"
    return await stream_template_string(source, items=_items("template", delay))


@app.websocket("/ws/unread")
async def ws_unread() -> None:
    """Accepts, then waits for something else (a pub/sub channel), never reading."""
    _enter("ws-unread")
    try:
        await websocket.accept()
        await asyncio.Event().wait()
    finally:
        _leave("ws-unread")


@app.websocket("/ws/before-accept")
async def ws_before_accept() -> None:
    """Waits (an authentication lookup) before it accepts."""
    _enter("ws-before-accept")
    try:
        await asyncio.Event().wait()
        await websocket.accept()
    finally:
        _leave("ws-before-accept")
