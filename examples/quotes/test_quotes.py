"""The quotes example against a real, slow quote server on 127.0.0.1.

The quote server (``quote_server.py``) runs under uvicorn in a thread, on a
port the OS picks, and takes ``DELAY`` seconds per quote. Only lower time
bounds are checked (N quotes one by one take at least N * DELAY: the server
sleeps that long); "all at once" is checked by the quote server's count of
requests in flight, not by a clock.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from quotes import quote_server
from quotes.app import create_app

HERE = Path(__file__).parent
N = 20
DELAY = 0.2
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def quote_url() -> Iterator[str]:
    """The quote service, under uvicorn in a thread; yields its URL."""
    app = quote_server.create_app({"QUOTE_DELAY": DELAY})
    # Port 0: the OS picks a free port.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="asyncio", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert thread.is_alive(), "the quote server did not start"
            assert time.monotonic() < deadline, "the quote server did not start in time"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


def stats(quote_url: str) -> dict[str, int]:
    return httpx.get(f"{quote_url}/stats").json()  # type: ignore[no-any-return]


@pytest.fixture
async def client(quote_url: str) -> AsyncIterator[Any]:
    """The example app's test client, pointed at the quote service.

    ``lifespan()`` runs the app's ``before_serving`` / ``after_serving`` hooks,
    which open and close its httpx client.
    """
    httpx.delete(f"{quote_url}/stats")
    app = create_app({"TESTING": True, "QUOTES_URL": quote_url})
    client = app.test_client()
    async with client.lifespan():
        yield client


def expected(n: int) -> list[dict[str, Any]]:
    return [quote_server.quote(i) for i in range(1, n + 1)]


async def test_concurrent(client, quote_url):
    start = time.perf_counter()
    response = await client.get(f"/concurrent?n={N}")
    elapsed = time.perf_counter() - start

    assert response.status_code == 200
    data = response.json
    assert data["mode"] == "concurrent"
    assert data["count"] == N
    # All N quotes, each the right one, in order.
    assert data["quotes"] == expected(N)
    assert DELAY <= data["seconds"] <= elapsed
    # At once, not one by one: the quote server had many of them in flight.
    served = stats(quote_url)
    assert served["served"] == N
    assert served["max_in_flight"] >= N // 2


async def test_sequential(client, quote_url):
    start = time.perf_counter()
    response = await client.get(f"/sequential?n={N}")
    elapsed = time.perf_counter() - start

    assert response.status_code == 200
    data = response.json
    assert data["mode"] == "sequential"
    assert data["quotes"] == expected(N)
    assert N * DELAY <= data["seconds"] <= elapsed
    assert stats(quote_url) == {"served": N, "max_in_flight": 1}


async def test_compare_page(client):
    # Both ways, on one page, with the speed-up.
    response = await client.get("/?n=5")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>5 quotes</h1>" in page
    seconds = [float(s) for s in re.findall(r'class="seconds">([\d.]+) s<', page)]
    assert len(seconds) == 2
    one_by_one, at_once = seconds
    assert one_by_one >= 5 * DELAY
    assert at_once < one_by_one
    speedup = float(re.search(r"([\d.]+)&times; faster", page).group(1))
    assert speedup > 1.5
    assert page.count("<li>") == 5
    assert "Simple is better than complex." in page


async def test_default_count(client):
    response = await client.get("/concurrent")
    assert response.json["count"] == 20
    assert len(response.json["quotes"]) == 20


@pytest.mark.parametrize("n", [0, 101])
async def test_count_out_of_range(client, quote_url, n):
    response = await client.get(f"/concurrent?n={n}")
    assert response.status_code == 400
    assert b"n must be between 1 and 100." in response.data
    assert stats(quote_url)["served"] == 0


async def test_quote_service_fails(quote_url):
    # A quote that does not exist: one request fails, the view answers 502.
    app = create_app({"TESTING": True, "QUOTES_URL": f"{quote_url}/nowhere"})
    client = app.test_client()
    async with client.lifespan():
        for path in ("/concurrent?n=3", "/sequential?n=3"):
            response = await client.get(path)
            assert response.status_code == 502
            assert "The quote service failed" in response.json["error"]


# -- the README's two terminals: both apps under `flask aiorun` --------------------


@pytest.fixture
def aiorun(tmp_path: Path) -> Iterator[Any]:
    """``aiorun(app_file, **env)`` starts ``flask --app app_file aiorun --port 0``.

    It returns the server's URL; the servers are stopped after the test.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(app_file: str, **env: str) -> str:
        log = tmp_path / f"{app_file}.log"
        command = [sys.executable, "-m", "flask", "--app", str(HERE / app_file)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "aiorun", "--port", "0"],
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        deadline = time.monotonic() + TIMEOUT
        while not (match := re.search(r"running on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return match.group(1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(TIMEOUT)


def test_served_by_flask_aiorun(aiorun):
    # Terminal 1: the quote service. Terminal 2: the app, pointed at it.
    quote_url = aiorun("quote_server.py", FLASK_QUOTE_DELAY="0.2")
    app_url = aiorun("app.py", FLASK_QUOTES_URL=quote_url)

    data = httpx.get(f"{app_url}/concurrent?n=10", timeout=TIMEOUT).json()
    assert data["quotes"] == expected(10)
    assert stats(quote_url)["max_in_flight"] >= 5  # at once, not one by one
    page = httpx.get(f"{app_url}/?n=3", timeout=TIMEOUT).text
    assert "<h1>3 quotes</h1>" in page
    assert "faster" in page
