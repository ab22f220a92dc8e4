"""An app keeping a resource in the ASGI lifespan state, made by a ``while_serving``
generator; its steps are logged to the file named by ``$STATE_LOG``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aioflask import Flask, request, websocket

app = Flask(__name__)


def record(line: str) -> None:
    with Path(os.environ["STATE_LOG"]).open("a") as f:
        f.write(line + "\n")


class Pool:
    def __init__(self) -> None:
        self.open = True
        self.used = 0


@app.while_serving
async def pool():
    await asyncio.sleep(0.1)  # requests must wait for this
    app.lifespan_state.pool = Pool()
    app.lifespan_state.started = os.getpid()
    record("startup")
    yield
    record(f"shutdown used={app.lifespan_state.pool.used}")
    app.lifespan_state.pool.open = False


@app.get("/")
def index():
    state = request.state
    state.pool.used += 1  # the shared object
    state.mine = "this request only"  # the request's own copy of the dict
    return {"open": state.pool.open, "started": state.started, "names": sorted(state)}


@app.websocket("/ws")
async def ws():
    await websocket.accept()
    await websocket.send(str(request.state.pool.open))
