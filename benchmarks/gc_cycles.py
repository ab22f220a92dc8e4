"""Garbage collection per request: how often it runs, and which objects form cycles.

In-process (default): the same JSON ping driven N times through

- ``aioflask``: ``app(scope, receive, send)``, the full ASGI path (bridge, greenlet);
- ``ceiling``: the ceiling app of ``apps/ceiling_app.py`` (Flask's ``wsgi_app``
  called inline from an ASGI app, no greenlet);
- ``wsgi_app``: plain Flask's ``wsgi_app(environ, start_response)``, with the
  environ built once per request by ``aioflask.core.http.build_environ``.

For each it reports the collections per 1,000 requests of each generation
(``gc.get_stats()`` before and after, default thresholds) and then, with the
collector off and ``gc.DEBUG_SAVEALL``, the objects each request leaves to the
cycle collector, by type, and the cycles themselves (strongly connected
groups of those objects, by the types in them).

``--server STACK`` instead serves a uvicorn stack in this process (CPU 0) under
wrk (CPU 1) and counts collections and the time spent in them under load;
``--freeze`` calls ``gc.freeze()`` after warm-up, ``--threshold N`` sets the
generation-0 threshold, to see what those would buy; ``--saveall`` turns the
collector off during the run and lists what it would have collected.

    python benchmarks/gc_cycles.py [-n 2000] [--endpoint ping]
    python benchmarks/gc_cycles.py --server aioflask [--endpoint sleep] [--freeze] [--saveall]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import importlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from apps.common import ECHO_SIZE, check
from loadgen import wrk
from stacks import HOST, ROUTES, SERVER_CPU, STACKS, can_pin, free_port

from aioflask.core.http import build_environ


def make_scope(endpoint: str) -> dict[str, Any]:
    method, path = ROUTES[endpoint]
    headers = [(b"host", b"127.0.0.1:8000")]
    if method == "POST":
        headers += [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(ECHO_SIZE).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


def load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def asgi_runner(app: Any, endpoint: str) -> Callable[[int], None]:
    """Run ``n`` requests through an ASGI app, as a server would (one task each)."""
    loop = asyncio.new_event_loop()
    body = b"x" * ECHO_SIZE if ROUTES[endpoint][0] == "POST" else b""

    async def one() -> None:
        scope = make_scope(endpoint)
        sent = []
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        data = b"".join(m.get("body", b"") for m in sent[1:])
        problem = check(endpoint, sent[0]["status"], data)
        if problem:
            raise RuntimeError(problem)

    def run(n: int) -> None:
        for _ in range(n):
            loop.run_until_complete(loop.create_task(one()))

    return run


def wsgi_runner(endpoint: str) -> Callable[[int], None]:
    """Run ``n`` requests through plain Flask's ``wsgi_app``."""
    from apps.flask_app import app

    body = b"x" * ECHO_SIZE if ROUTES[endpoint][0] == "POST" else b""

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        pass

    def run(n: int) -> None:
        for _ in range(n):
            environ = build_environ(make_scope(endpoint), io.BytesIO(body))  # type: ignore[arg-type]
            iterable = app.wsgi_app(environ, start_response)
            b"".join(iterable)
            iterable.close()

    return run


def collections_per_request(run: Callable[[int], None], n: int) -> tuple[list[float], float]:
    """Collections of each generation per 1,000 requests, and µs per request."""
    gc.collect()
    before = [s["collections"] for s in gc.get_stats()]
    started = time.perf_counter()
    run(n)
    elapsed = time.perf_counter() - started
    after = [s["collections"] for s in gc.get_stats()]
    return [1000 * (b - a) / n for a, b in zip(before, after, strict=True)], elapsed / n * 1e6


def cycle_garbage(run: Callable[[int], None], n: int) -> list[Any]:
    """What ``n`` requests leave for the cycle collector (gc off, DEBUG_SAVEALL)."""
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        run(n)
        gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
        gc.enable()
    return garbage


def type_name(obj: Any) -> str:
    cls = type(obj)
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", None):
        name = f"{cls.__module__}.{name}"
    if cls.__name__ in ("function", "method") and hasattr(obj, "__qualname__"):
        name += f" {obj.__qualname__}"
    elif cls.__name__ == "frame":
        name += f" {obj.f_code.co_name}"
    elif cls.__name__ == "cell":
        try:
            name += f" ({type(obj.cell_contents).__name__})"
        except ValueError:
            name += " (empty)"
    return name


def cycles(garbage: list[Any]) -> collections.Counter[tuple[str, ...]]:
    """Strongly connected groups (cycles) among the garbage, by their types."""
    index = {id(obj): i for i, obj in enumerate(garbage)}
    edges = [
        [index[id(ref)] for ref in gc.get_referents(obj) if id(ref) in index] for obj in garbage
    ]
    # Tarjan's algorithm, iterative.
    order = [-1] * len(garbage)
    low = [0] * len(garbage)
    on_stack = [False] * len(garbage)
    stack: list[int] = []
    counter = 0
    found: collections.Counter[tuple[str, ...]] = collections.Counter()
    for root in range(len(garbage)):
        if order[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                order[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(edges[node]):
                work.append((node, child + 1))
                nxt = edges[node][child]
                if order[nxt] == -1:
                    work.append((nxt, 0))
                elif on_stack[nxt]:
                    low[node] = min(low[node], order[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges[node]:
                    found[tuple(sorted(type_name(garbage[m]) for m in group))] += 1
    return found


def in_process(args: argparse.Namespace) -> None:
    from aioflask import Flask  # noqa: F401  (import cost out of the way)

    runners = {
        "aioflask": asgi_runner(load("apps.aioflask_app:app"), args.endpoint),
        "ceiling": asgi_runner(load("apps.ceiling_app:app"), args.endpoint),
        "wsgi_app": wsgi_runner(args.endpoint),
    }
    print(f"{args.endpoint}: {args.n} requests in-process, Python {sys.version.split()[0]}")
    print(f"gc thresholds {gc.get_threshold()}")
    print()
    for name, run in runners.items():
        run(200)  # warm up
        rates, us = collections_per_request(run, args.n)
        garbage = cycle_garbage(run, args.n)
        print(
            f"== {name}: {us:.0f} µs/request; collections per 1,000 requests: gen0 {rates[0]:.1f},"
            f" gen1 {rates[1]:.2f}, gen2 {rates[2]:.3f}"
        )
        print("\n".join(describe_garbage(garbage, args.n, args.top)))
        print()


def describe_garbage(garbage: list[Any], n: int, top: int) -> list[str]:
    """The garbage of ``n`` requests by type, then its cycles by their types."""
    lines = [f"   {len(garbage) / n:.1f} objects per request left to the cycle collector"]
    by_type = collections.Counter(type_name(obj) for obj in garbage)
    lines += [f"   {count / n:6.2f}  {name}" for name, count in by_type.most_common(top)]
    found = cycles(garbage)
    lines.append(f"   cycles per request: {sum(found.values()) / n:.2f}")
    for members, count in found.most_common(top):
        kinds = collections.Counter(members)
        text = ", ".join(f"{k} x {t}" if k > 1 else t for t, k in kinds.items())
        lines.append(f"   {count / n:6.2f}  [{len(members)} objects] {text}")
    return lines


class GCTimer:
    """Counts collections and the time they take (gc.callbacks)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.collected = 0
        self.active = False
        self._start: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.active:
            self._start = None
        elif phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            generation = info["generation"]
            self.counts[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._start
            self.collected += info["collected"]


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    stack = STACKS[args.server]
    if stack.argv[1] != "uvicorn":
        raise SystemExit(f"--server takes a uvicorn stack; {stack.name} runs on {stack.server}")
    target = next(a for a in stack.argv if a.startswith("apps."))
    lifespan = "off" if "off" in stack.argv else "auto"
    if can_pin():
        os.sched_setaffinity(0, {SERVER_CPU})
    os.environ.update(stack.env)
    port = free_port()
    config = uvicorn.Config(
        load(target),
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan=lifespan,
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    timer = GCTimer()
    gc.callbacks.append(timer)
    report: list[str] = []
    method, path = ROUTES[args.endpoint]
    connections = 256 if args.endpoint == "sleep" else 64

    def drive() -> None:
        try:
            while not server.started:
                time.sleep(0.05)
            url = f"http://{HOST}:{port}{path}"
            wrk(url, connections=connections, duration=2, post=method == "POST")
            if args.freeze:
                gc.freeze()
            if args.saveall:
                gc.collect()
                gc.disable()
                gc.set_debug(gc.DEBUG_SAVEALL)
            cpu = time.process_time()
            timer.active = True
            result = wrk(
                url, connections=connections, duration=args.duration, post=method == "POST"
            )
            timer.active = False
            cpu = time.process_time() - cpu
            if args.saveall:
                gc.collect()
                garbage = list(gc.garbage)
                gc.garbage.clear()
                gc.set_debug(0)
                gc.enable()
            n = max(result.requests, 1)
            report.append(
                f"{args.server} {method} {path} at {connections} connections, gc thresholds"
                f" {gc.get_threshold()}{', frozen' if args.freeze else ''}:"
                f" {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms,"
                f" {cpu / n * 1e6:.0f} µs CPU per request"
            )
            for g in range(3):
                report.append(
                    f"  gen{g}: {1000 * timer.counts[g] / n:8.2f} collections per 1,000 requests,"
                    f" {timer.seconds[g] / n * 1e6:6.1f} µs per request"
                    f" ({100 * timer.seconds[g] / max(cpu, 1e-9):.1f}% of CPU),"
                    f" {timer.seconds[g] / max(timer.counts[g], 1) * 1e3:.2f} ms each"
                )
            report.append(
                f"  {timer.collected / n:.1f} objects collected per request;"
                f" {len(gc.get_objects())} objects tracked at the end"
            )
            if args.saveall:
                report.append("  with the collector off during the run (DEBUG_SAVEALL):")
                report.extend(describe_garbage(garbage, n, args.top))
        finally:
            server.should_exit = True

    if args.threshold:
        gc.set_threshold(args.threshold, *gc.get_threshold()[1:])
    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    server.run()
    thread.join()
    print("\n".join(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests (in-process)")
    parser.add_argument("--endpoint", default="ping", choices=["ping", "tmpl", "echo", "sleep"])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--server", metavar="STACK", help="measure under wrk load instead")
    parser.add_argument("-d", "--duration", type=float, default=10)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after warm-up")
    parser.add_argument("--threshold", type=int, help="generation-0 threshold")
    parser.add_argument(
        "--saveall", action="store_true", help="collector off under load; list its garbage"
    )
    args = parser.parse_args(argv)
    if args.server:
        serve(args)
    else:
        in_process(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
