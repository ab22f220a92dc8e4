"""An app with serving hooks that log to the file named by ``$LIFESPAN_LOG``.

``$LIFESPAN_FAIL=1`` makes a startup hook raise.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aioflask import Flask, current_app, g

app = Flask(__name__)
LOG = Path(os.environ["LIFESPAN_LOG"])


def record(line: str) -> None:
    with LOG.open("a") as f:
        f.write(line + "\n")


@app.before_serving
async def startup_async():
    # Suspend on the loop: the server must still not accept requests before this ends.
    await asyncio.sleep(0.2)
    g.started = "startup-async"
    record(f"startup-async {current_app.name}")


@app.before_serving
def startup_sync():
    record(f"startup-sync {current_app.name} {g.started}")
    if os.environ.get("LIFESPAN_FAIL"):
        raise RuntimeError("boom in before_serving")


@app.after_serving
async def shutdown_async():
    await asyncio.sleep(0.05)
    record(f"shutdown-async {current_app.name}")


@app.after_serving
def shutdown_sync():
    record(f"shutdown-sync {current_app.name}")


@app.get("/")
def index():
    record("request")
    return {"log": LOG.read_text().splitlines()}
