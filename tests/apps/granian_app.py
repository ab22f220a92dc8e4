"""An app for ``flask aiorun --server granian`` (tests/test_granian.py).

Its serving hooks log to the file named by ``$GRANIAN_LOG``;
``$GRANIAN_FAIL_STARTUP=1`` makes the startup hook raise.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aioflask import Flask, current_app, g, request, websocket

app = Flask(__name__)
#: The tests of the reloader change this line.
VERSION = "first"


def record(line: str) -> None:
    with Path(os.environ["GRANIAN_LOG"]).open("a") as f:
        f.write(f"{line} {os.getpid()}\n")


@app.before_serving
async def startup() -> None:
    # The server must not hand the app a request before this ends.
    await asyncio.sleep(0.2)
    g.started = True
    record("startup")
    if os.environ.get("GRANIAN_FAIL_STARTUP"):
        raise RuntimeError("boom in before_serving")


@app.after_serving
async def shutdown() -> None:
    await asyncio.sleep(0.05)
    record("shutdown")


@app.get("/")
async def index() -> dict[str, object]:
    await asyncio.sleep(0)
    return {
        "version": VERSION,
        "pid": os.getpid(),
        "log": Path(os.environ["GRANIAN_LOG"]).read_text().splitlines(),
        "debug": current_app.debug,
        "scheme": request.scheme,
        "server": request.environ["asgi.scope"].get("asgi", {}).get("version"),
    }


@app.post("/echo")
def echo() -> dict[str, object]:
    # Flask reads the body through wsgi.input: pulled from granian as read.
    data = request.get_data()
    return {"length": len(data), "sum": sum(data)}


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("boom for the debugger")


@app.websocket("/ws")
async def ws() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)
