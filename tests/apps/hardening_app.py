"""Limits, timeouts and the loop watchdog under a real uvicorn.

Served as ``uvicorn hardening_app:app`` by tests/test_watchdog.py,
tests/test_timeouts.py and tests/test_websockets.py. Config keys come from the
environment: ``HARDENING_<KEY>=<json>`` sets ``app.config[KEY]``. What
happened to streams is reported by ``GET /state``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from aioflask import Flask, current_app, request, websocket

app = Flask(__name__)
for name, value in os.environ.items():
    if name.startswith("HARDENING_"):
        app.config[name.removeprefix("HARDENING_")] = json.loads(value)

#: What happened on the server: generator states, body sizes read.
STATE: dict[str, object] = {}


@app.get("/state")
def state():
    return {**STATE, "blocked_loop_count": current_app.blocked_loop_count}


@app.get("/block")
async def block_in_async_view():
    time.sleep(0.3)  # blocks the loop: the watchdog names this line
    return "done"


@app.get("/fine")
async def fine():
    await asyncio.sleep(0.3)
    return "fine"


@app.post("/upload")
def upload():
    size = 0
    while chunk := request.stream.read(4096):
        size += len(chunk)
    STATE["upload"] = size
    return {"size": size}


@app.post("/upload/patient")
def patient_upload():
    request.body_timeout = float(request.args["timeout"])
    return {"size": len(request.get_data())}


@app.get("/endless")
def endless():
    def generate():
        STATE["endless"] = "running"
        try:
            chunk = b"x" * 65536
            while True:
                yield chunk
        finally:
            STATE["endless"] = "closed"

    response = current_app.response_class(generate())
    if "timeout" in request.args:
        response.timeout = float(request.args["timeout"])
    return response


@app.get("/big")
def big():
    size = int(request.args["size"])

    def generate():
        STATE["big"] = "running"
        sent = 0
        while sent < size:
            yield b"y" * 65536
            sent += 65536
        STATE["big"] = "finished"

    response = current_app.response_class(generate())
    response.timeout = float(request.args["timeout"])
    return response


@app.websocket("/ws/echo")
async def echo():
    await websocket.accept()
    try:
        async for message in websocket:
            await websocket.send(message)
    finally:
        STATE["echo_close_code"] = websocket.close_code
