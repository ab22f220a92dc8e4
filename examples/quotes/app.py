"""Fan out: many HTTP calls at once from an ``async def`` view, with httpx.

The quote service (``quote_server.py``) takes ``QUOTE_DELAY`` seconds per
quote. ``/sequential`` asks for N quotes one after the other: N times the
delay. ``/concurrent`` asks for all of them at once with ``asyncio.gather``:
about one delay in all. ``/`` does both and shows the speed-up. Serve it with::

    flask --app examples/quotes/app.py aiorun

Configuration (or ``FLASK_``-prefixed environment variables, such as
``FLASK_QUOTES_URL``): ``QUOTES_URL``, the quote service;
``QUOTES_COUNT``, N when ``?n=`` is not given; ``QUOTES_MAX_COUNT``, the
largest N allowed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx

from aioflask import Flask, abort, current_app, render_template, request

Quote = dict[str, Any]
Fetch = Callable[[httpx.AsyncClient, Iterable[int]], Awaitable[list[Quote]]]


async def fetch_quote(http: httpx.AsyncClient, quote_id: int) -> Quote:
    """Ask the quote service for one quote."""
    response = await http.get(f"/quotes/{quote_id}")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def fetch_sequentially(http: httpx.AsyncClient, ids: Iterable[int]) -> list[Quote]:
    """One request after the other: the times add up."""
    return [await fetch_quote(http, quote_id) for quote_id in ids]


async def fetch_concurrently(http: httpx.AsyncClient, ids: Iterable[int]) -> list[Quote]:
    """All the requests at once: it takes about as long as the slowest one.

    The results come back in the order of ``ids``. If one request fails, the
    others are cancelled and the error is raised (so does an
    ``asyncio.TaskGroup``, on Python 3.11 and later).
    """
    tasks = [asyncio.ensure_future(fetch_quote(http, quote_id)) for quote_id in ids]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def timed(fetch: Fetch, n: int) -> dict[str, Any]:
    """Fetch quotes 1 to n with ``fetch``; the quotes and the seconds it took."""
    http = current_app.extensions["quotes_http"]
    start = time.perf_counter()
    quotes = await fetch(http, range(1, n + 1))
    return {"count": n, "seconds": round(time.perf_counter() - start, 3), "quotes": quotes}


def count() -> int:
    """How many quotes to fetch: ``?n=``, or ``QUOTES_COUNT``."""
    n = request.args.get("n", current_app.config["QUOTES_COUNT"], type=int)
    limit = current_app.config["QUOTES_MAX_COUNT"]
    if not 1 <= n <= limit:
        abort(400, f"n must be between 1 and {limit}.")
    return n


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        QUOTES_URL="http://127.0.0.1:5001",
        QUOTES_COUNT=20,
        QUOTES_MAX_COUNT=100,
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.update(test_config)

    @app.before_serving
    async def open_http_client() -> None:
        # One client for the app's lifetime: it keeps connections open for
        # reuse. Allow as many connections as one view may fan out to.
        limit = app.config["QUOTES_MAX_COUNT"]
        app.extensions["quotes_http"] = httpx.AsyncClient(
            base_url=app.config["QUOTES_URL"],
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            timeout=30.0,
        )

    @app.after_serving
    async def close_http_client() -> None:
        await app.extensions.pop("quotes_http").aclose()

    @app.get("/sequential")
    async def sequential():
        return {"mode": "sequential", **await timed(fetch_sequentially, count())}

    @app.get("/concurrent")
    async def concurrent():
        return {"mode": "concurrent", **await timed(fetch_concurrently, count())}

    @app.get("/")
    async def compare():
        n = count()
        one_by_one = await timed(fetch_sequentially, n)
        at_once = await timed(fetch_concurrently, n)
        speedup = one_by_one["seconds"] / max(at_once["seconds"], 0.001)
        return await render_template(
            "quotes.html", sequential=one_by_one, concurrent=at_once, speedup=speedup
        )

    @app.errorhandler(httpx.HTTPError)
    def quote_service_failed(error: httpx.HTTPError):
        return {"error": f"The quote service failed: {error}"}, 502

    return app
