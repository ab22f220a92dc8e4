"""Server memory per idle WebSocket connection, under uvicorn.

For each row, a uvicorn serves this module in a subprocess; the script opens
``--connections`` WebSocket connections to it (websockets client library),
waits until every handler has accepted and said "ready" (the handler then
waits for a message that never comes), and reports the growth of the
server's resident memory divided by the number of connections.

    python benchmarks/ws_memory.py [--connections 1000] [--rounds 3]

Rows (the ``/ws/idle`` handlers of ``apps/``: accept, send "ready", wait):

- ``raw ASGI``: a bare ASGI WebSocket app: what uvicorn and the websockets
  protocol cost per connection, the floor.
- ``Starlette``, ``Quart``: their WebSocket handlers.
- ``aioflask async def``: ``@app.websocket`` with an ``async def`` handler
  (``async for message in websocket``).
- ``aioflask def``: the same with a sync handler (``for message in
  websocket``), suspended in its bridge greenlet.

Each round starts a fresh server, warms it up with a first batch of
connections (closed again), measures RSS, opens all connections, waits a
moment, measures again. The median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
KIB = 1024

ROWS = [
    ("raw ASGI", "apps.raw_app:app", "/ws/idle"),
    ("Starlette", "apps.starlette_app:app", "/ws/idle"),
    ("Quart", "apps.quart_app:app", "/ws/idle"),
    ("aioflask async def", "apps.aioflask_app:app", "/ws/idle"),
    ("aioflask def", "apps.aioflask_app:app", "/ws/idle-sync"),
]

# -- the measurement ------------------------------------------------------------------


def start_server(target: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    log = Path(f"/tmp/ws_memory-{os.getpid()}.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", target, "--app-dir", str(HERE)),
                *("--port", "0", "--log-level", "warning", "--no-access-log"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    # uvicorn prints its port only at info level: ask the OS instead.
    import psutil

    deadline = time.monotonic() + 30
    while True:
        ports = [
            c.laddr.port
            for c in psutil.Process(process.pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN
        ]
        if ports:
            return process, ports[0], log
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start:\n{log.read_text()}")
        time.sleep(0.05)


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


async def open_connections(url: str, count: int) -> list[Any]:
    from websockets.asyncio.client import connect

    async def one() -> Any:
        ws = await connect(url, ping_interval=None, max_queue=1)
        assert await ws.recv() == "ready"
        return ws

    connections: list[Any] = []
    for start in range(0, count, 100):  # batches: no SYN flood on the backlog
        batch = min(100, count - start)
        connections += await asyncio.gather(*(one() for _ in range(batch)))
    return connections


async def close_all(connections: list[Any]) -> None:
    await asyncio.gather(*(ws.close() for ws in connections))


async def measure(target: str, path: str, count: int) -> float:
    """Bytes of server RSS per idle connection, for one fresh server."""
    process, port, log = start_server(target)
    try:
        url = f"ws://127.0.0.1:{port}{path}"
        # Warm up: imports, caches, the bridge's greenlet pool, allocator arenas.
        await close_all(await open_connections(url, min(count, 200)))
        await asyncio.sleep(0.5)
        before = rss(process.pid)
        connections = await open_connections(url, count)
        await asyncio.sleep(1.0)
        after = rss(process.pid)
        await close_all(connections)
        return (after - before) / count
    finally:
        process.terminate()
        process.wait(15)
        log.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    print(f"{args.connections} idle WebSocket connections, uvicorn, median of {args.rounds}")
    print(f"{'row':<22} {'KiB per connection':>19} {'rounds (KiB)':>30}")
    for name, target, path in ROWS:
        rounds = [
            asyncio.run(measure(target, path, args.connections)) / KIB for _ in range(args.rounds)
        ]
        shown = " ".join(f"{r:.1f}" for r in rounds)
        print(f"{name:<22} {statistics.median(rounds):>19.1f} {shown:>30}")


if __name__ == "__main__":
    main()
