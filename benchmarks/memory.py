"""Memory and file descriptors of an aioflask server.

1. A 100 MiB upload, read by the view in 64 KiB chunks (``POST /upload``),
   must grow the server's RSS (sampled every few ms, peak) by less than 10 MiB.
   ``--control`` also sends it to the ceiling app, which buffers the whole body
   before calling Flask: that growth shows the measurement can see buffering.
2. Rounds of 10,000 requests (ping, template, 64 KiB echo, 50 ms sleep, and
   clients that hang up during a sleep) must leave RSS and open file
   descriptors flat.

    python benchmarks/memory.py [--upload-mib 100] [--requests 10000] [--rounds 2] [--control]

Exits 1 when a limit is crossed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from apps.common import ECHO_SIZE, check
from stacks import CLIENT_CPU, HOST, STACKS, Server, can_pin

MIB = 1024 * 1024
CHUNK = 64 * 1024
UPLOAD_LIMIT_MIB = 10
#: RSS growth from one round of requests to the next that still counts as flat.
FLAT_RSS_MIB = 2


class Sampler(threading.Thread):
    """Polls a process's RSS until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def upload(port: int, path: str, size: int) -> tuple[int, bytes]:
    """POST ``size`` bytes in 64 KiB chunks, never holding more than one."""
    chunk = b"x" * CHUNK

    def body():
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            sent += len(piece)
            yield piece

    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for piece in body():
            conn.send(piece)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def measure_upload(server: Server, path: str, size: int) -> tuple[float, float, float]:
    """(RSS before, peak RSS, RSS after) in MiB around one upload."""
    process = psutil.Process(server.pid)
    for _ in range(3):  # warm the path up first
        upload(server.port, path, CHUNK * 4)
    before = process.memory_info().rss
    sampler = Sampler(server.pid)
    sampler.start()
    status, body = upload(server.port, path, size)
    peak = sampler.stop()
    after = process.memory_info().rss
    if status != 200 or f'"length":{size}' not in body.decode().replace(" ", ""):
        raise RuntimeError(f"upload failed: {status} {body[:200]!r}")
    return before / MIB, peak / MIB, after / MIB


def _client(port: int, count: int, offset: int) -> int:
    """``count`` requests on one keep-alive connection (a mix); the failures."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    failures = 0
    echo = b"x" * ECHO_SIZE
    mix = [("ping", "GET", "/", None)] * 6 + [
        ("tmpl", "GET", "/tmpl", None),
        ("echo", "POST", "/echo", echo),
        ("sleep", "GET", "/sleep", None),
        ("abort", "GET", "/sleep", None),
    ]
    for i in range(count):
        endpoint, method, path, body = mix[(i + offset) % len(mix)]
        if endpoint == "abort":
            # A client that hangs up while its view awaits.
            with socket.create_connection((HOST, port)) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                time.sleep(0.005)
            continue
        conn.request(method, path, body=body)
        response = conn.getresponse()
        if check(endpoint, response.status, response.read()) is not None:
            failures += 1
    conn.close()
    return failures


def requests_round(port: int, total: int, clients: int = 16) -> int:
    per_client = total // clients
    with ThreadPoolExecutor(clients) as pool:
        results = pool.map(_client, [port] * clients, [per_client] * clients, range(clients))
        return sum(results)


def snapshot(pid: int) -> tuple[float, int]:
    process = psutil.Process(pid)
    return process.memory_info().rss / MIB, process.num_fds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upload-mib", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10_000, help="per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--control", action="store_true", help="also upload to the ceiling")
    args = parser.parse_args(argv)
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    ok = True
    size = args.upload_mib * MIB
    with Server(STACKS["aioflask"]) as server:
        before, peak, after = measure_upload(server, "/upload", size)
        grew = peak - before
        verdict = "ok" if grew < UPLOAD_LIMIT_MIB else "TOO MUCH"
        ok &= grew < UPLOAD_LIMIT_MIB
        print(
            f"aioflask, {args.upload_mib} MiB upload read in 64 KiB chunks: RSS {before:.1f} MiB"
            f" before, peak {peak:.1f} MiB (+{grew:.1f} MiB, limit {UPLOAD_LIMIT_MIB}), {after:.1f}"
            f" MiB after: {verdict}"
        )

        warm = args.requests
        failures = requests_round(server.port, warm)
        rss, fds = snapshot(server.pid)
        print(f"after {warm:,} warm-up requests: RSS {rss:.1f} MiB, {fds} open fds")
        history = [(rss, fds)]
        for n in range(1, args.rounds + 1):
            started = time.monotonic()
            failures += requests_round(server.port, args.requests)
            time.sleep(0.5)  # let aborted requests finish being cancelled
            rss, fds = snapshot(server.pid)
            history.append((rss, fds))
            print(
                f"after {n} x {args.requests:,} more requests ({time.monotonic() - started:.1f} s):"
                f" RSS {rss:.1f} MiB ({rss - history[-2][0]:+.1f}), {fds} open fds"
                f" ({fds - history[-2][1]:+d})"
            )
        rss_growth = max(b[0] - a[0] for a, b in itertools.pairwise(history))
        fd_growth = history[-1][1] - history[0][1]
        flat = rss_growth < FLAT_RSS_MIB and fd_growth <= 0 and failures == 0
        ok &= flat
        print(
            f"largest RSS growth per round {rss_growth:+.1f} MiB (limit {FLAT_RSS_MIB}),"
            f" fds {fd_growth:+d}, {failures} wrong responses: {'flat' if flat else 'NOT FLAT'}"
        )
    if args.control:
        with Server(STACKS["ceiling"]) as server:
            before, peak, after = measure_upload(server, "/echo", size)
            print(
                f"control (the ceiling app buffers the body): RSS {before:.1f} MiB before, peak"
                f" {peak:.1f} MiB (+{peak - before:.1f} MiB)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
