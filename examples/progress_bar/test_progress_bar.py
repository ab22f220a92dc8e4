"""The progress bar example: a background task, progress over server-sent events."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from progress_bar import create_app

HERE = Path(__file__).parent
TIMEOUT = 10.0


def parse(stream: bytes) -> list[dict[str, Any]]:
    """The events of a text/event-stream, with their data decoded (comments dropped)."""
    events = []
    for block in stream.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line[:1] != ":")
        if "data" in fields:
            events.append({**fields, "data": json.loads(fields["data"])})
    return events


@pytest.fixture
def app():
    return create_app(STEPS=5, STEP_SECONDS=0.01)


@pytest.fixture
async def client(app) -> AsyncIterator[Any]:
    client = app.test_client()
    async with client.lifespan():
        yield client


async def start(client: Any, steps: int | None = None) -> dict[str, Any]:
    response = await client.post("/jobs", json={"steps": steps} if steps else None)
    assert response.status_code == 202
    return response.json  # type: ignore[no-any-return]


async def test_page(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert b"new EventSource(" in response.data


async def test_progress_until_done(client):
    job = await start(client)
    assert job["events"] == f"/jobs/{job['id']}/events"
    async with client.stream("GET", job["events"]) as response:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        events = parse(await asyncio.wait_for(response.aread(), TIMEOUT))
    # The current state first, then each step, then the end.
    assert [e["event"] for e in events] == ["progress"] * (len(events) - 1) + ["done"]
    assert [e["data"]["done"] for e in events] == sorted({e["data"]["done"] for e in events})
    assert events[-1]["data"] == {"id": job["id"], "done": 5, "steps": 5, "state": "finished"}
    assert events[-1]["id"] == "5"
    assert (await client.get(f"/jobs/{job['id']}")).json["state"] == "finished"


async def test_several_readers(client):
    job = await start(client, steps=3)

    async def read() -> list[dict[str, Any]]:
        async with client.stream("GET", job["events"]) as response:
            return parse(await response.aread())

    first, second = await asyncio.wait_for(asyncio.gather(read(), read()), TIMEOUT)
    assert first[-1]["data"]["state"] == second[-1]["data"]["state"] == "finished"


async def test_a_reader_that_leaves_is_let_go(app, client):
    app.config["STEP_SECONDS"] = 0.05
    job = await start(client, steps=10)
    tracked = app.extensions["progress_jobs"][job["id"]]
    async with client.stream("GET", job["events"]) as response:
        chunks = response.aiter_bytes()
        await asyncio.wait_for(chunks.__anext__(), TIMEOUT)
        assert tracked.watchers == 1
    # Leaving the block disconnected: the generator was closed...
    assert tracked.watchers == 0
    # ...and the job itself goes on.
    assert tracked.state == "running"
    assert await app.background_tasks.wait(TIMEOUT)
    assert tracked.state == "finished"


async def test_shutdown_waits_for_the_job(app):
    client = app.test_client()
    async with client.lifespan():
        job = await start(client, steps=4)
    # The lifespan's shutdown drained the background task.
    assert app.extensions["progress_jobs"][job["id"]].state == "finished"


async def test_a_job_cancelled_at_shutdown_is_marked_failed(app, caplog):
    app.config.update(STEP_SECONDS=3600, BACKGROUND_TASK_SHUTDOWN_TIMEOUT=0.01)
    client = app.test_client()
    async with client.lifespan():
        job = await start(client, steps=2)
    assert app.extensions["progress_jobs"][job["id"]].state == "failed"
    assert "Cancelling 1 background task(s)" in caplog.text


async def test_bad_requests(client):
    assert (await client.get("/jobs/nope/events")).status_code == 404
    assert (await client.get("/jobs/nope")).status_code == 404
    assert (await client.post("/jobs", json={"steps": 0})).status_code == 400
    assert (await client.post("/jobs", json={"steps": "many"})).status_code == 400


# -- under a real server -----------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``flask --app progress_bar aiorun`` on a port it picks; its base URL."""
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROGRESS_STEP_SECONDS": "0.02"}
    command = [sys.executable, "-m", "flask", "--app", "progress_bar", "aiorun", "--port", "0"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=HERE, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"running on http://127\.0\.0\.1:(\d+)", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_served_by_flask_aiorun(server):
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT) as http:
        job = (await http.post("/jobs", json={"steps": 5})).json()
        seen = b""
        async with http.stream("GET", job["events"]) as response:
            assert response.headers["x-accel-buffering"] == "no"
            async for chunk in response.aiter_bytes():
                seen += chunk
        events = parse(seen)
        assert events[-1]["event"] == "done"
        assert events[-1]["data"]["done"] == 5
        assert (await http.get(f"/jobs/{job['id']}")).json()["state"] == "finished"
