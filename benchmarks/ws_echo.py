"""WebSocket echo throughput: messages per second for 100 connections.

Each stack (``stacks.py``: aioflask, Quart, Starlette and the raw ASGI app on
uvicorn, aioflask and the raw app on granian) serves ``/ws/echo``, which
sends every message back. The client opens the connections, then each one
sends a 32-byte text message and sends the next as soon as the echo is back
(one message in flight per connection), for ``--duration`` seconds after a
warm-up. The server runs on CPU 0, this client on CPU 1.

The client is a bare asyncio protocol writing one prepared frame and counting
the bytes that come back (an echo is exactly 2 + 32 bytes): a WebSocket
library on the client side would cost more CPU than the servers measured.
Reported per stack: the median messages/s of the repeats, the server's CPU
time per message (steadier than messages/s on a busy machine), and the ratio
to aioflask.

    python benchmarks/ws_echo.py [--stacks aioflask,quart] [-d 5] [-r 3] [-c 100]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time

from run import _cpu_seconds
from stacks import CLIENT_CPU, HOST, STACKS, Server, can_pin

DEFAULT_STACKS = (
    "aioflask",
    "aioflask-granian",
    "quart",
    "starlette",
    "raw-asgi",
    "raw-asgi-granian",
)
PAYLOAD = b"x" * 32
# A masked text frame with a zero mask key: the payload goes as it is.
FRAME = bytes([0x81, 0x80 | len(PAYLOAD)]) + b"\0\0\0\0" + PAYLOAD
ECHO_SIZE = 2 + len(PAYLOAD)  # the server's frame: unmasked, same payload
HANDSHAKE = (
    "GET /ws/echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class EchoClient(asyncio.Protocol):
    """One connection: handshake, then one message in flight at a time."""

    def __init__(self, counter: list[int]) -> None:
        self.counter = counter
        self.upgraded = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.pending = 0
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self.buffer += data
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if sep:
                if not head.startswith(b"HTTP/1.1 101"):
                    self.upgraded.set_exception(RuntimeError(head.decode(errors="replace")))
                    return
                self.upgraded.set_result(None)
                self.pending = len(rest)
            return
        self.pending += len(data)
        while self.pending >= ECHO_SIZE:
            self.pending -= ECHO_SIZE
            self.counter[0] += 1
            if self.running:
                self.transport.write(FRAME)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed before the upgrade"))


async def drive(port: int, connections: int, warmup: float, duration: float) -> float:
    """Messages per second over ``duration``, after ``warmup``."""
    loop = asyncio.get_running_loop()
    counter = [0]
    clients = []
    for _ in range(connections):
        transport, client = await loop.create_connection(lambda: EchoClient(counter), HOST, port)
        transport.write(HANDSHAKE.format(host=f"{HOST}:{port}").encode())
        await client.upgraded
        clients.append((transport, client))
    for transport, _ in clients:
        transport.write(FRAME)
    await asyncio.sleep(warmup)
    start_count, started = counter[0], time.monotonic()
    await asyncio.sleep(duration)
    rate = (counter[0] - start_count) / (time.monotonic() - started)
    for transport, client in clients:
        client.running = False
        transport.close()
    return rate


def measure(name: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """(messages/s, server CPU µs per message, server CPU use) of one fresh server."""
    with Server(STACKS[name], pin=can_pin()) as server:
        cpu_before = _cpu_seconds(server.pid)
        started = time.monotonic()
        rate = asyncio.run(drive(server.port, args.connections, args.warmup, args.duration))
        # CPU over warm-up and run, messages over the same time (estimated).
        elapsed = time.monotonic() - started
        cpu = (_cpu_seconds(server.pid) - cpu_before) / elapsed
    return rate, cpu / rate * 1e6, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default=",".join(DEFAULT_STACKS))
    parser.add_argument("-c", "--connections", type=int, default=100)
    parser.add_argument("-d", "--duration", type=float, default=5)
    parser.add_argument("-w", "--warmup", type=float, default=1)
    parser.add_argument("-r", "--repeats", type=int, default=3)
    args = parser.parse_args()
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    stacks = args.stacks.split(",")
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in stacks}
    for repeat in range(args.repeats):
        shift = repeat % len(stacks)  # rotate, so that no stack always goes first
        for name in stacks[shift:] + stacks[:shift]:
            results[name].append(measure(name, args))
            rate, cpu_us, cpu = results[name][-1]
            print(
                f"  [{repeat + 1}] {name:18} {rate:9,.0f} msg/s  {cpu_us:5.1f} us/msg"
                f"  server CPU {cpu:.0%}",
                file=sys.stderr,
            )
    base = statistics.median(r[0] for r in results.get("aioflask", [(math.nan, 0, 0)]))
    print(f"\nWebSocket echo, {args.connections} connections, 32-byte text messages,")
    print(f"{args.duration:g} s per run, median of {args.repeats}:\n")
    print("| stack | server | messages/s | min-max | vs aioflask | server CPU | CPU µs/message |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for name in sorted(stacks, key=lambda n: -statistics.median(r[0] for r in results[n])):
        rates = [r[0] for r in results[name]]
        rate = statistics.median(rates)
        cpu_us = statistics.median(r[1] for r in results[name])
        cpu = statistics.median(r[2] for r in results[name])
        shown = f"**{name}**" if name.startswith("aioflask") else name
        print(
            f"| {shown} | {STACKS[name].server} | {rate:,.0f}"
            f" | {min(rates):,.0f}-{max(rates):,.0f} | {rate / base:.2f}x | {cpu:.0%}"
            f" | {cpu_us:.1f} |"
        )


if __name__ == "__main__":
    main()
