"""An app for Hypercorn (tests/test_hypercorn.py): ``/`` tells whether the
lifespan startup hook ran in this process, ``/ws`` echoes."""

from __future__ import annotations

import os

from aioflask import Flask, websocket

app = Flask(__name__)
started: list[int] = []


@app.before_serving
def startup() -> None:
    started.append(os.getpid())


@app.get("/")
def index() -> dict[str, object]:
    return {"started": started == [os.getpid()]}


@app.websocket("/ws")
async def ws() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)
