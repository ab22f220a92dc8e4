"""Flask, for WSGI servers: sync views (``app``) and ``async def`` views (``async_app``).

``a2wsgi_app`` is ``app`` behind a2wsgi's ASGI-to-WSGI thread pool (its default
of 10 threads).
"""

from __future__ import annotations

import asyncio
import time

from a2wsgi import WSGIMiddleware
from flask import Flask, render_template, request

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATES, TITLE, db_sleep

app = Flask(__name__, template_folder=str(TEMPLATES))


@app.get("/")
def ping():
    return PING


@app.get("/sleep")
@app.get("/block", endpoint="block")
def sleep():
    time.sleep(SLEEP_SECONDS)
    return PING


@app.get("/tmpl")
def tmpl():
    return render_template("table.html", rows=ROWS, title=TITLE)


@app.post("/echo")
def echo():
    return {"length": len(request.get_data())}


@app.get("/db")
def db():
    # psycopg: the query blocks this thread; a connection per gthread thread.
    db_sleep("psycopg", pool_size=32)
    return PING


a2wsgi_app = WSGIMiddleware(app)

# Flask 3's async views: each call runs in a new event loop (asgiref's async_to_sync).
async_app = Flask(__name__, template_folder=str(TEMPLATES))


@async_app.get("/")
async def async_ping():
    return PING


@async_app.get("/sleep")
async def async_sleep():
    await asyncio.sleep(SLEEP_SECONDS)
    return PING


@async_app.get("/tmpl")
async def async_tmpl():
    return render_template("table.html", rows=ROWS, title=TITLE)


@async_app.post("/echo")
async def async_echo():
    return {"length": len(request.get_data())}
