"""Starlette: the same endpoints with Starlette's routing and Jinja2Templates."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

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


app = Starlette(
    routes=[
        Route("/", ping),
        Route("/sleep", sleep),
        Route("/tmpl", tmpl),
        Route("/echo", echo, methods=["POST"]),
    ]
)
