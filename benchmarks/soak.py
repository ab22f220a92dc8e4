"""Soak: tens of thousands of mixed requests through uvicorn; nothing may pile up.

Starts ``apps/soak_app.py`` under uvicorn (uvloop, httptools) in a subprocess
and sends it ``--requests`` requests (20,000 by default) from ``--clients``
concurrent clients: sync and async views, uploads, streams (sync and async
generators, ``stream_with_context``), server-sent events, WebSocket echo,
errors (500, 404), and clients that go away at a random point (before the
answer, in the middle of a stream, an SSE stream or a WebSocket, halfway
through an upload). At the start, the middle and the end (after the last
client left and a short pause) it prints what the server holds: asyncio
tasks, greenlets, open file descriptors, RSS, CPU use meanwhile, and per kind
of stream how many generators or handlers have not ended.

    python benchmarks/soak.py [--requests 20000] [--clients 32] [--max-seconds 600]

Bounded: each request gives up after 15 s, and no request starts after
``--max-seconds``. Exits 1 if the server still holds more than it did at the
start (tasks, open streams) once the clients are gone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect as ws_connect

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 15.0

#: kind -> weight in the mix.
MIX = {
    "sync": 18,
    "async": 14,
    "upload": 8,
    "stream": 7,
    "stream-context": 4,
    "astream": 6,
    "sse": 6,
    "websocket": 7,
    "error": 4,
    "missing": 4,
    "drop-async": 4,
    "drop-stream": 4,
    "drop-astream": 4,
    "drop-sse": 4,
    "drop-sse-idle": 2,
    "drop-websocket": 2,
    "drop-upload": 2,
}


class Server:
    """``uvicorn apps.soak_app:app`` on a free port, output to a log file."""

    def __init__(self) -> None:
        self.log = Path(tempfile.mkstemp(prefix="soak-", suffix=".log")[1])
        argv = [
            *(sys.executable, "-m", "uvicorn", "apps.soak_app:app"),
            *("--app-dir", str(BENCH_DIR), "--host", HOST, "--port", "0"),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning", "--timeout-graceful-shutdown", "5"),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.port = 0
        deadline = time.monotonic() + 30
        while not self.port:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"uvicorn did not start:\n{self.log.read_text()}")
            for conn in psutil.Process(self.process.pid).net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    self.port = conn.laddr.port
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def http(
    port: int, method: str, path: str, body: bytes = b"", read: int | None = None
) -> bytes:
    """One request on a new connection; the whole answer, or ``read`` bytes of it then hang up."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n"
        if method == "POST":
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        if read is None:
            return await reader.read()
        data = b""
        while len(data) < read and (chunk := await reader.read(read - len(data))):
            data += chunk
        return data
    finally:
        writer.transport.abort() if read is not None else writer.close()


def status(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return int(match.group(1)) if match else 0


async def one(kind: str, port: int, rng: random.Random) -> bool:
    """Make one request of this kind; whether it went as it should."""
    if kind == "sync":
        return status(await http(port, "GET", "/sync")) == 200
    if kind == "async":
        return status(await http(port, "GET", "/async")) == 200
    if kind == "upload":
        body = os.urandom(rng.choice((10, 1000, 64 * 1024)))
        answer = await http(port, "POST", "/echo", body)
        return answer.endswith(b'{"length":%d}\n' % len(body))
    if kind in ("stream", "stream-context", "astream"):
        answer = await http(port, "GET", f"/{kind}?tag={kind}")
        return status(answer) == 200 and answer.endswith(b"0\r\n\r\n")
    if kind == "sse":
        answer = await http(port, "GET", "/sse?tag=sse")
        return status(answer) == 200 and answer.count(b"data: ") == 10
    if kind == "websocket":
        async with ws_connect(f"ws://{HOST}:{port}/ws?tag=websocket") as ws:
            for i in range(5):
                await ws.send(f"m{i}")
                if await ws.recv() != f"m{i}":
                    return False
        return True
    if kind == "error":
        return status(await http(port, "GET", "/error")) == 500
    if kind == "missing":
        return status(await http(port, "GET", "/missing")) == 404
    # Clients that leave: after a random number of bytes of the answer.
    if kind == "drop-async":
        await http(port, "GET", "/async?sleep=0.05", read=rng.randrange(0, 2))
    elif kind in ("drop-stream", "drop-astream"):
        await http(port, "GET", f"/{kind[5:]}?tag={kind}", read=rng.randrange(0, 20_000))
    elif kind == "drop-sse":
        path = "/sse?n=1000000&delay=0&tag=drop-sse"
        await http(port, "GET", path, read=rng.randrange(0, 4096))
    elif kind == "drop-sse-idle":
        path = "/sse?n=1000000&delay=0.01&tag=drop-sse-idle"
        await http(port, "GET", path, read=rng.randrange(0, 1024))
    elif kind == "drop-upload":
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\n")
        writer.write(os.urandom(rng.randrange(0, 50_000)))
        await writer.drain()
        writer.transport.abort()
    elif kind == "drop-websocket":
        await drop_websocket(port, rng)
    return True


async def drop_websocket(port: int, rng: random.Random) -> None:
    """A WebSocket client that vanishes (no close frame) at a random point."""
    reader, writer = await asyncio.open_connection(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        "GET /ws?tag=drop-websocket HTTP/1.1\r\nHost: soak\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    if rng.random() < 0.5:
        await reader.readuntil(b"\r\n\r\n")
        # A masked text frame "hi" (the server echoes it), then gone.
        mask = os.urandom(4)
        writer.write(
            bytes([0x81, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
        )
        await writer.drain()
    writer.transport.abort()


async def stats(port: int) -> dict[str, Any]:
    answer = await http(port, "GET", "/debug/stats")
    return json.loads(answer.partition(b"\r\n\r\n")[2])  # type: ignore[no-any-return]


def row(phase: str, done: int, s: dict[str, Any], cpu: float | None) -> str:
    open_streams = ", ".join(f"{k} {v}" for k, v in sorted(s["open"].items())) or "-"
    cpu_text = "" if cpu is None else f"{cpu:.0%}"
    return (
        f"| {phase} | {done:,} | {s['tasks']} | {s['greenlets']} | {s['fds']} "
        f"| {s['rss'] / 2**20:.1f} | {cpu_text} | {open_streams} |"
    )


async def soak(args: argparse.Namespace) -> int:
    server = Server()
    port = server.port
    rng = random.Random(args.seed)
    kinds = [rng.choices(list(MIX), weights=list(MIX.values()))[0] for _ in range(args.requests)]
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    proc = psutil.Process(server.process.pid)
    rows = []
    try:
        for _ in range(200):  # warm up: imports, pools, caches
            await one(rng.choice(["sync", "async", "stream", "websocket"]), port, rng)
        start = await stats(port)
        rows.append(row("start", 0, start, None))
        deadline = time.monotonic() + args.max_seconds
        queue = iter(enumerate(kinds))
        halfway = asyncio.Event()
        done = 0

        async def client(seed: int) -> None:
            nonlocal done
            crng = random.Random(seed)
            for i, kind in queue:
                if time.monotonic() > deadline:
                    return
                try:
                    ok = await asyncio.wait_for(one(kind, port, crng), REQUEST_TIMEOUT)
                    outcomes[kind]["ok" if ok else "unexpected answer"] += 1
                except asyncio.TimeoutError:
                    outcomes[kind]["timeout"] += 1
                except (OSError, EOFError, Exception) as exc:
                    outcomes[kind][type(exc).__name__] += 1
                done += 1
                if i == args.requests // 2:
                    halfway.set()

        t0 = time.monotonic()
        cpu0 = proc.cpu_times()
        clients = [asyncio.ensure_future(client(rng.random())) for _ in range(args.clients)]
        await asyncio.wait(
            [asyncio.ensure_future(halfway.wait()), *clients], return_when="FIRST_COMPLETED"
        )
        middle = await stats(port)
        rows.append(row("middle", done, middle, None))
        await asyncio.gather(*clients)
        elapsed = time.monotonic() - t0
        busy = sum(proc.cpu_times()[:2]) - sum(cpu0[:2])
        await asyncio.sleep(args.settle)
        cpu1 = proc.cpu_times()
        await asyncio.sleep(1.0)
        idle_cpu = sum(proc.cpu_times()[:2]) - sum(cpu1[:2])
        end = await stats(port)
        rows.append(row(f"end (+{args.settle:g} s)", done, end, idle_cpu))
    finally:
        server.stop()

    print(
        f"{done:,} requests in {elapsed:.1f} s ({done / elapsed:,.0f}/s) from {args.clients}"
        f" clients; server CPU {busy:.1f} s ({busy / done * 1e6:,.0f} µs/request)\n"
    )
    print("| phase | requests | tasks | greenlets | fds | RSS MiB | CPU when idle | not ended |")
    print("|---|--:|--:|--:|--:|--:|--:|---|")
    print("\n".join(rows))
    print(
        "\n| kind | requests | outcomes | started | not ended at the end |\n|---|--:|---|--:|--:|"
    )
    for kind in MIX:
        counts = outcomes[kind]
        text = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        # Stream bodies and WebSocket handlers, warm-up excluded.
        started = end["started"].get(kind, 0) - start["started"].get(kind, 0) or ""
        left = end["open"].get(kind, "")
        print(f"| {kind} | {sum(counts.values()):,} | {text} | {started} | {left} |")
    errors = [line for line in server.log.read_text().splitlines() if "ERROR" in line]
    unexpected = [e for e in errors if "Exception on /error [GET]" not in e]
    print(f"\nserver log: {server.log}: {len(errors)} ERROR lines, {len(unexpected)} unexpected")
    for line in sorted(set(unexpected))[:10]:
        print("   ", line)
    leaked = end["tasks"] > start["tasks"] or any(end["open"].values())
    if leaked:
        print("NOT FLAT: the server holds more tasks or streams than at the start")
    return 1 if leaked else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--settle", type=float, default=2.0, help="pause before the end sample")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
