"""The loop watchdog: a blocked event loop is reported with the view, route and stack."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

import aioflask
from aioflask.watchdog import blocked_loop_threshold


async def test_blocking_async_view_is_named_under_uvicorn(start_server):
    server = start_server(
        "hardening_app:app", env={"HARDENING_AIOFLASK_BLOCKED_LOOP_WARNING": "0.1"}
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.get("/fine")).text == "fine"  # awaits: not blocking
        assert (await client.get("/block")).text == "done"
        # At least: a busy machine may hold the server's loop too, unnamed.
        assert (await client.get("/state")).json()["blocked_loop_count"] >= 1
    log = server.log
    assert "by view 'fine'" not in log
    assert "The event loop was held for at least 0." in log
    assert "by view 'block_in_async_view', GET /block (route '/block'" in log
    # The stack as seen while blocked ends at the blocking line.
    stack = log.split("Stack when seen", 1)[1]
    assert 'hardening_app.py", line' in stack
    assert "in block_in_async_view\n    time.sleep(0.3)" in stack


async def test_debug_mode_turns_it_on(start_server):
    server = start_server("hardening_app:app", env={"HARDENING_DEBUG": "true"})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await client.get("/block")
        assert (await client.get("/state")).json()["blocked_loop_count"] >= 1
    assert "by view 'block_in_async_view'" in server.log


async def test_off_by_default(start_server):
    server = start_server("hardening_app:app")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await client.get("/block")
        assert (await client.get("/state")).json()["blocked_loop_count"] == 0
    assert "event loop was held" not in server.log


@pytest.mark.parametrize(
    ("value", "debug", "expected"),
    [(None, False, None), (None, True, 0.1), (0.5, False, 0.5), (0, True, None)],
)
def test_threshold_from_config(value: Any, debug: bool, expected: float | None):
    app = aioflask.Flask(__name__)
    app.debug = debug
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = value
    assert blocked_loop_threshold(app) == expected


def test_negative_threshold_is_an_error():
    app = aioflask.Flask(__name__)
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = -1
    with pytest.raises(ValueError, match="must be >= 0 seconds"):
        blocked_loop_threshold(app)


async def test_hooks_and_tasks_are_named(app, http, caplog):
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = 0.05

    @app.before_request
    def slow_hook() -> None:
        time.sleep(0.2)

    @app.get("/")
    def index() -> str:
        return "ok"

    async def slow_task() -> None:
        time.sleep(0.2)

    assert (await http.get("/")).text == "ok"
    await asyncio.sleep(0.05)
    task = asyncio.ensure_future(slow_task())
    task.set_name("nightly-report")
    await task
    await asyncio.sleep(0.05)
    warnings = [r.getMessage() for r in caplog.records if "event loop was held" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert (
        "by before_request hook 'test_hooks_and_tasks_are_named.<locals>.slow_hook'" in warnings[0]
    )
    assert "GET / (route '/', endpoint 'index')" in warnings[0]
    assert "slow_task(), in task 'nightly-report'" in warnings[1]
    assert app.blocked_loop_count == 2


async def test_a_new_loop_is_watched_anew():
    app = aioflask.Flask(__name__)
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = 0.05

    @app.get("/")
    async def index() -> str:
        time.sleep(0.15)
        return "ok"

    def serve_once() -> None:
        async def main() -> None:
            await app.test_client().get("/")
            await asyncio.sleep(0.05)

        asyncio.run(main())

    await asyncio.to_thread(serve_once)
    first = app.blocked_loop_count
    assert first >= 1
    while app.loop_watchdog.running:  # until its thread sees the loop closed
        await asyncio.sleep(0.01)
    await asyncio.to_thread(serve_once)  # another loop, in another thread
    assert app.blocked_loop_count > first


async def test_a_hold_that_lasts_is_reported_while_it_lasts(app, http, caplog):
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = 0.05
    logged_while_held = []

    @app.get("/spin")
    async def spin() -> str:
        # Busy until the watchdog speaks (a loop that would never end otherwise).
        while not any("still held" in r.getMessage() for r in caplog.records):
            time.sleep(0.01)
        logged_while_held.append(True)
        return "ok"

    assert (await http.get("/spin")).text == "ok"
    assert logged_while_held == [True]
    still = [r.getMessage() for r in caplog.records if "still held" in r.getMessage()]
    assert len(still) == 1
    assert (
        "so far by view 'test_a_hold_that_lasts_is_reported_while_it_lasts.<locals>.spin'"
        in (still[0])
    )
    assert "GET /spin (route '/spin', endpoint 'spin')" in still[0]
    assert "in spin\n    time.sleep(0.01)" in still[0]


async def test_lifespan_starts_it_and_shutdown_stops_it():
    app = aioflask.Flask(__name__)
    app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = 0.05
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []
    running: list[bool] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            watchdog = app.loop_watchdog
            running.append(watchdog is not None and watchdog.running)
            messages.put_nowait({"type": "lifespan.shutdown"})

    messages.put_nowait({"type": "lifespan.startup"})
    await app({"type": "lifespan"}, messages.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert running == [True]
    assert app.loop_watchdog is None  # stopped by app.shutdown()
