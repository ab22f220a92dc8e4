"""The hello world app, through the async test client (the app's ASGI entry point)."""

import asyncio
import time

from hello_world.app import app


async def test_index():
    client = app.test_client()
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json == {"hello": "world"}


async def test_wait():
    client = app.test_client()
    start = time.perf_counter()
    response = await client.get("/wait/0.1")
    assert time.perf_counter() - start >= 0.1
    assert response.status_code == 200
    assert response.json == {"waited": 0.1}


async def test_waits_overlap():
    # Ten requests that each wait 0.2 s, at once: the waits overlap on the
    # event loop (one after the other, they would take 2 s).
    client = app.test_client()
    start = time.perf_counter()
    responses = await asyncio.gather(*(client.get("/wait/0.2") for _ in range(10)))
    assert time.perf_counter() - start < 1.5
    assert [r.json for r in responses] == [{"waited": 0.2}] * 10


async def test_wait_needs_a_number():
    client = app.test_client()
    assert (await client.get("/wait/soon")).status_code == 404
