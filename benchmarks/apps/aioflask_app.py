"""aioflask: sync views where Flask code would be sync, ``async def`` where it awaits.

``BENCH_THREADS=N`` sets the loop's default thread pool (used by ``@in_thread``)
to N threads at startup; without it asyncio's default applies
(``min(32, cpu_count + 4)``).
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from aioflask import Flask, in_thread, render_template, request

from .common import PING, ROWS, SLEEP_SECONDS, TEMPLATES, TITLE

app = Flask(__name__, template_folder=str(TEMPLATES))


@app.before_serving
async def _thread_pool() -> None:
    threads = os.environ.get("BENCH_THREADS")
    if threads:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(int(threads)))


@app.get("/")
def ping():
    return PING


@app.get("/sleep")
async def sleep():
    await asyncio.sleep(SLEEP_SECONDS)
    return PING


@app.get("/tmpl")
async def tmpl():
    return await render_template("table.html", rows=ROWS, title=TITLE)


@app.post("/echo")
def echo():
    return {"length": len(request.get_data())}


@app.get("/block")
@in_thread
def block():
    time.sleep(SLEEP_SECONDS)
    return PING


@app.post("/upload")
def upload():
    """Read the body in 64 KiB chunks without keeping it (for memory.py)."""
    total = 0
    while chunk := request.stream.read(64 * 1024):
        total += len(chunk)
    return {"length": total}
