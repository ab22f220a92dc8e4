"""Starlette: the same endpoints with Starlette's routing and Jinja2Templates."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATES, TITLE

templates = Jinja2Templates(directory=str(TEMPLATES))


async def ping(request: Request) -> JSONResponse:
    return JSONResponse(PING)


async def sleep(request: Request) -> JSONResponse:
    await asyncio.sleep(SLEEP_SECONDS)
    return JSONResponse(PING)


async def tmpl(request: Request):
    return templates.TemplateResponse(request, "table.html", {"rows": ROWS, "title": TITLE})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"length": len(await request.body())})


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)


async def ws_idle(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("ready")
    async for _ in websocket.iter_text():
        pass


app = Starlette(
    routes=[
        Route("/", ping),
        Route("/sleep", sleep),
        Route("/tmpl", tmpl),
        Route("/echo", echo, methods=["POST"]),
        WebSocketRoute("/ws/echo", ws_echo),
        WebSocketRoute("/ws/idle", ws_idle),
    ]
)
