"""Microseconds per request, in-process: what aioflask adds to Flask's dispatch.

No server, no socket: each row calls an application directly with a prepared
request, many times, and times it. ``python benchmarks/inprocess.py --help``.

Rows (the view is the same JSON ping, ``return {"ok": True}``):

- Flask's ``wsgi_app(environ, start_response)``, sync view: the floor.
- Flask's ``wsgi_app``, ``async def`` view (asgiref: a thread and a loop per call).
- aioflask's ``wsgi_app`` (WSGI mode), sync view.
- aioflask's ``app(scope, receive, send)`` (ASGI), sync view and ``async def`` view.

Each row runs for ``--seconds``; all rows are measured ``--repeat`` times,
interleaved, and the median is reported with its ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import time
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from typing import Any

import flask
from werkzeug.test import EnvironBuilder

import aioflask

BATCH = 100  # calls between two looks at the clock
EXPECTED_BODY = b'{"ok":true}\n'

# A scope like uvicorn's for ``GET /ping``; copied for every call.
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 54321),
    "scheme": "http",
    "method": "GET",
    "root_path": "",
    "path": "/ping",
    "raw_path": b"/ping",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"benchmark"),
        (b"accept", b"*/*"),
    ],
    "state": {},
}
REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def make_apps() -> tuple[flask.Flask, aioflask.Flask]:
    flask_app = flask.Flask("bench_flask")
    aio_app = aioflask.Flask("bench_aioflask")
    for app in (flask_app, aio_app):

        @app.get("/ping")
        def ping() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/aping")
        async def aping() -> dict[str, bool]:
            return {"ok": True}

    return flask_app, aio_app


# -- WSGI ----------------------------------------------------------------------------


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def wsgi_call(app: flask.Flask, environ: dict[str, Any]) -> bytes:
    iterable = app.wsgi_app(environ.copy(), start_response)
    try:
        return b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


def wsgi_runner(app: flask.Flask, path: str) -> Callable[[float], float]:
    environ = EnvironBuilder(
        path=path,
        base_url="http://127.0.0.1:8000",
        headers={"User-Agent": "benchmark", "Accept": "*/*"},
        environ_base={"REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "54321"},
    ).get_environ()
    assert wsgi_call(app, environ) == EXPECTED_BODY

    def run(seconds: float) -> float:
        call = app.wsgi_app
        copy = environ.copy
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(BATCH):
                iterable = call(copy(), start_response)
                for _chunk in iterable:
                    pass
                iterable.close()
            calls += BATCH
            now = time.perf_counter()
            if now >= deadline:
                return (now - start) / calls * 1e6

    return run


# -- ASGI ----------------------------------------------------------------------------


def make_receive() -> Callable[[], Coroutine[Any, Any, dict[str, Any]]]:
    """The body in one message, then wait, as a server does until the client leaves."""
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return REQUEST
        await asyncio.get_running_loop().create_future()  # cancelled at the end
        raise AssertionError("unreachable")

    return receive


async def discard(message: dict[str, Any]) -> None:
    pass


async def asgi_check(app: aioflask.Flask, scope: dict[str, Any]) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope.copy(), make_receive(), send)
    assert sent[0]["status"] == 200, sent
    assert b"".join(m.get("body", b"") for m in sent[1:]) == EXPECTED_BODY, sent


def asgi_runner(
    app: aioflask.Flask, path: str, loop: asyncio.AbstractEventLoop
) -> Callable[[float], float]:
    scope = {**SCOPE, "path": path, "raw_path": path.encode()}
    loop.run_until_complete(asgi_check(app, scope))

    async def measure(seconds: float) -> float:
        copy = scope.copy
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(BATCH):
                await app(copy(), make_receive(), discard)
            calls += BATCH
            now = time.perf_counter()
            if now >= deadline:
                return (now - start) / calls * 1e6

    def run(seconds: float) -> float:
        return loop.run_until_complete(measure(seconds))

    return run


# -- main ----------------------------------------------------------------------------


def new_loop(kind: str) -> tuple[asyncio.AbstractEventLoop, str]:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), f"uvloop {uvloop.__version__}"
    return asyncio.new_event_loop(), "asyncio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per row and round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (rows interleaved)")
    parser.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop for the ASGI rows (auto: uvloop if installed, like uvicorn)",
    )
    args = parser.parse_args()

    loop, loop_name = new_loop(args.loop)
    flask_app, aio_app = make_apps()
    rows: list[tuple[str, Callable[[float], float]]] = [
        ("Flask    wsgi_app   def view (floor)", wsgi_runner(flask_app, "/ping")),
        ("Flask    wsgi_app   async def view", wsgi_runner(flask_app, "/aping")),
        ("aioflask wsgi_app   def view", wsgi_runner(aio_app, "/ping")),
        ("aioflask ASGI       def view", asgi_runner(aio_app, "/ping", loop)),
        ("aioflask ASGI       async def view", asgi_runner(aio_app, "/aping", loop)),
    ]
    print(
        f"Python {platform.python_version()}, Flask {version('flask')},"
        f" aioflask {version('aioflask')}, {loop_name};"
        f" {args.repeat} rounds of {args.seconds:g} s per row"
    )
    for _, run in rows:  # warm up
        run(min(0.2, args.seconds))
    results: dict[str, list[float]] = {name: [] for name, _ in rows}
    for round_ in range(args.repeat):
        for name, run in rows:
            gc.collect()
            results[name].append(run(args.seconds))
        print(f"  round {round_ + 1}/{args.repeat} done", flush=True)

    floor = statistics.median(results[rows[0][0]])
    print()
    print(f"{'':38} {'median us/req':>13} {'min':>8} {'max':>8} {'x floor':>8}")
    for name, _ in rows:
        values = results[name]
        median = statistics.median(values)
        print(
            f"{name:38} {median:13.1f} {min(values):8.1f} {max(values):8.1f} {median / floor:8.2f}"
        )
    loop.close()


if __name__ == "__main__":
    main()
