"""CPU instructions per request, in-process: the measure a noisy machine cannot blur.

Each row runs the JSON ping of ``inprocess.py`` (the ``echo`` row: a view
echoing a 64 KiB POST body; the ``suspend`` rows: an ``async def`` view that
waits once, ``await asyncio.sleep(0)``, served as a server would, a task per
request and a ``receive()`` that waits after the request, one request at a
time or 256 in flight) N times under valgrind's callgrind, twice (N1 and N2
requests); the difference divided by N2 - N1 is the instructions one
request costs, start-up excluded. Counts repeat exactly
for the same code and versions, whatever else the machine is doing, so the
ratios here are the in-process target's yardstick (see README.md).

    python benchmarks/instructions.py            # every row
    python benchmarks/instructions.py --n 300 2300
    python benchmarks/instructions.py --rows aioflask-asgi,aioflask-asgi-suspend
    python benchmarks/instructions.py --uvloop   # asyncio.run() on uvloop, as uvicorn runs

Needs ``valgrind`` (Debian's package).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROWS = {
    "flask-wsgi": "Flask wsgi_app, def view (the floor)",
    "ceiling": "ASGI: environ + Flask wsgi_app inline, def view",
    "aioflask-wsgi": "aioflask wsgi_app (WSGI mode), def view",
    "aioflask-asgi": "aioflask ASGI, def view",
    "aioflask-asgi-async": "aioflask ASGI, async def view",
    "aioflask-asgi-no-timeouts": "aioflask ASGI, def view, timeouts off",
    "aioflask-asgi-watchdog": "aioflask ASGI, def view, loop watchdog on",
    "aioflask-asgi-echo": "aioflask ASGI, POST 64 KiB, def view reads it",
    "aioflask-asgi-echo-waits": "the same, each receive() waits, an empty last message (granian)",
    "raw-asgi-suspend": "raw ASGI app, waits once (asyncio.sleep(0))",
    "aioflask-asgi-suspend": "aioflask ASGI, async def view, waits once (asyncio.sleep(0))",
    "aioflask-asgi-suspend-256": "aioflask ASGI, async def view, waits once, 256 at a time",
    "flask-wsgi-tmpl": "Flask wsgi_app, /tmpl of apps/flask_app.py (render_template)",
    "aioflask-asgi-tmpl": "aioflask ASGI, /tmpl of apps/aioflask_app.py (await render_template)",
}
ECHO_BODY = b"x" * 65536
RAW_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"12")]
#: Requests in flight at once in the ``-256`` row (as run.py's /sleep).
CONCURRENCY = 256


def run_row(row: str, n: int) -> None:
    """Serve ``n`` requests of one row (the part callgrind counts)."""
    sys.path.insert(0, str(HERE))
    import inprocess
    from werkzeug.test import EnvironBuilder

    from aioflask.core.http import build_environ

    flask_app, aio_app = inprocess.make_apps()
    if os.environ.get("BENCH_LOOP") == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    @aio_app.post("/echo")
    def echo() -> bytes:
        return aio_app.request_class.get_data(inprocess.aioflask.request)  # type: ignore[no-any-return]

    @aio_app.get("/wait")
    async def wait() -> dict[str, bool]:
        # Suspends the request once: the disconnect watch, the greenlet
        # switches and the task's wake-up are counted, with no timer.
        await asyncio.sleep(0)
        return {"ok": True}

    async def raw_app(scope: Any, receive: Any, send: Any) -> None:
        # The floor of a request that waits once: a bare ASGI app.
        await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200, "headers": RAW_HEADERS})
        await send({"type": "http.response.body", "body": b'{"ok":true}\n'})

    environ = EnvironBuilder(path="/ping", base_url="http://127.0.0.1:8000").get_environ()
    scope = dict(inprocess.SCOPE)

    async def receive() -> dict[str, Any]:
        return inprocess.REQUEST

    async def receive_echo() -> dict[str, Any]:
        return {"type": "http.request", "body": ECHO_BODY, "more_body": False}

    def receive_waiting() -> Callable[[], Any]:
        # As granian hands a body: every receive() waits (a future completed
        # at the next loop iteration), the body with more_body, then an
        # empty last message; after that it waits for good.
        loop = asyncio.get_running_loop()
        messages = [
            {"type": "http.request", "body": ECHO_BODY, "more_body": True},
            {"type": "http.request", "body": b"", "more_body": False},
        ]

        def receive() -> asyncio.Future[dict[str, Any]]:
            future = loop.create_future()
            if messages:
                loop.call_soon(future.set_result, messages.pop(0))
            return future

        return receive

    async def asgi(app: Any, path: str, post: bool = False, waits: bool = False) -> None:
        s = {**scope, "path": path, "raw_path": path.encode()}
        if post:
            length = str(len(ECHO_BODY)).encode()
            s.update(method="POST", headers=[*s["headers"], (b"content-length", length)])
        for _ in range(n):
            body = receive_waiting() if waits else receive_echo if post else receive
            await app(s.copy(), body, inprocess.discard)

    async def waiting(app: Any, path: str, concurrency: int) -> None:
        # Like a server: a task per request, a receive() that gives the
        # request and then waits (for a disconnect that does not come).
        # `concurrency` clients, each sending its next request when the last
        # is answered (as wrk does): that many requests are in flight.
        s = {**scope, "path": path, "raw_path": path.encode()}
        left = n

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await app(s.copy(), inprocess.make_receive(), inprocess.discard)

        await asyncio.gather(*(client() for _ in range(concurrency)))

    async def ceiling() -> None:
        # What any design that runs Flask's dispatch must do at least.
        for _ in range(n):
            env = build_environ(scope.copy(), None)  # type: ignore[arg-type]
            body = flask_app.wsgi_app(env, inprocess.start_response)
            await inprocess.discard({"type": "http.response.start", "status": 200})
            await inprocess.discard({"type": "http.response.body", "body": b"".join(body)})
            body.close()  # type: ignore[attr-defined]

    if row.endswith("-tmpl"):
        # The template of run.py's /tmpl endpoint, in each stack's benchmark app.
        from apps import aioflask_app, flask_app

        tmpl_environ = {**environ, "PATH_INFO": "/tmpl"}
        if row == "flask-wsgi-tmpl":
            for _ in range(n):
                inprocess.wsgi_call(flask_app.app, tmpl_environ)
        else:
            asyncio.run(asgi(aioflask_app.app, "/tmpl"))
    elif row == "flask-wsgi":
        for _ in range(n):
            inprocess.wsgi_call(flask_app, environ)
    elif row == "aioflask-wsgi":
        for _ in range(n):
            inprocess.wsgi_call(aio_app, environ)
    elif row == "ceiling":
        asyncio.run(ceiling())
    elif row == "aioflask-asgi":
        asyncio.run(asgi(aio_app, "/ping"))
    elif row == "aioflask-asgi-async":
        asyncio.run(asgi(aio_app, "/aping"))
    elif row == "aioflask-asgi-echo":
        asyncio.run(asgi(aio_app, "/echo", post=True))
    elif row == "aioflask-asgi-echo-waits":
        asyncio.run(asgi(aio_app, "/echo", post=True, waits=True))
    elif row == "raw-asgi-suspend":
        asyncio.run(waiting(raw_app, "/wait", 1))
    elif row == "aioflask-asgi-suspend":
        asyncio.run(waiting(aio_app, "/wait", 1))
    elif row == "aioflask-asgi-suspend-256":
        asyncio.run(waiting(aio_app, "/wait", CONCURRENCY))
    elif row == "aioflask-asgi-no-timeouts":
        aio_app.config.update(BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None)
        asyncio.run(asgi(aio_app, "/ping"))
    elif row == "aioflask-asgi-watchdog":
        aio_app.config["AIOFLASK_BLOCKED_LOOP_WARNING"] = 0.1
        asyncio.run(asgi(aio_app, "/ping"))
    else:
        raise SystemExit(f"unknown row {row!r}")


def count(row: str, n: int, script: str = __file__) -> int:
    """Instructions of ``script --row ROW --requests N`` under callgrind."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            script,
            "--row",
            row,
            "--requests",
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
        # Hash randomization moves the counts by about 1% from run to run.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if not match:
        raise RuntimeError(out.stderr)
    return int(match.group(1))


def parse_args(
    doc: str, run: Callable[[str, int], None], rows: dict[str, str] | None = None
) -> tuple[int, int, list[str]] | None:
    """The command line of a callgrind script: ``--n N1 N2`` and the rows to count
    (``--rows a,b``: those of ``rows``, by default all); ``None`` when this process
    is one of the counted runs (``--row``), which ``run`` has served."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs=2, default=(200, 1200), metavar=("N1", "N2"))
    parser.add_argument("--rows", help="comma-separated rows to count (default: all)")
    parser.add_argument(
        "--uvloop", action="store_true", help="the ASGI rows on uvloop (as uvicorn runs them)"
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.uvloop:
        os.environ["BENCH_LOOP"] = "uvloop"  # for the counted runs
    if args.row:
        run(args.row, args.requests)
        return None
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    chosen = list(rows or ())
    if args.rows:
        chosen = args.rows.split(",")
        unknown = [row for row in chosen if rows is not None and row not in rows]
        if unknown:
            parser.error(f"unknown rows {unknown}; choose from {', '.join(rows or ())}")
    return args.n[0], args.n[1], chosen


def per_request(row: str, n1: int, n2: int, script: str = __file__) -> float:
    """Instructions one request of ``row`` costs: (count(N2) - count(N1)) / (N2 - N1)."""
    return (count(row, n2, script) - count(row, n1, script)) / (n2 - n1)


def main() -> None:
    args = parse_args(__doc__, run_row, ROWS)
    if args is None:
        return
    n1, n2, rows = args
    counts = {row: per_request(row, n1, n2) for row in rows}
    floor = counts.get("flask-wsgi")
    print("| row | instructions / request | x floor |\n|---|---:|---:|")
    for row in rows:
        ratio = f"{counts[row] / floor:.3f}" if floor else "-"
        print(f"| {ROWS[row]} | {counts[row]:,.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
