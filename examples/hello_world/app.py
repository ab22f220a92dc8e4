"""The smallest aioflask app: one sync view, one async view."""

import asyncio

from aioflask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return {"hello": "world"}


@app.get("/wait/<float:seconds>")
async def wait(seconds: float):
    await asyncio.sleep(min(seconds, 5.0))
    return {"waited": seconds}
