"""Quart: the same endpoints, ``async def`` everywhere as Quart wants."""

from __future__ import annotations

import asyncio

from quart import Quart, render_template, request, websocket

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATES, TITLE

app = Quart(__name__, template_folder=str(TEMPLATES))


@app.get("/")
async def ping():
    return PING


@app.get("/sleep")
async def sleep():
    await asyncio.sleep(SLEEP_SECONDS)
    return PING


@app.get("/tmpl")
async def tmpl():
    return await render_template("table.html", rows=ROWS, title=TITLE)


@app.post("/echo")
async def echo():
    return {"length": len(await request.get_data())}


@app.websocket("/ws/echo")
async def ws_echo():
    await websocket.accept()
    while True:
        await websocket.send(await websocket.receive())


@app.websocket("/ws/idle")
async def ws_idle():
    await websocket.accept()
    await websocket.send("ready")
    while True:
        await websocket.receive()
