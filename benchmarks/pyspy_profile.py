"""Where a server's CPU time goes under load: py-spy samples during a wrk run.

Starts a stack (aioflask by default) on CPU 0, drives one endpoint with wrk on
CPU 1 while ``py-spy record --nonblocking`` samples the server (Python frames
only, the server is never paused), then sums the samples three ways:

- by component: the file of the innermost frame (self time);
- by stage: the share of samples with a given function anywhere on the stack
  (inclusive time; stages nest, so they do not add up to 100%);
- the hottest functions (self time).

Garbage collection is invisible here (it runs in C, charged to whatever frame
allocated): ``gc_cycles.py --server`` measures it.

    python benchmarks/pyspy_profile.py [--stack aioflask] [--endpoint ping] [-d 10]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from loadgen import wrk
from stacks import CLIENT_CPU, ROUTES, STACKS, Server, pinned

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

#: (label, file part) for self time; the first match wins, so order matters.
COMPONENTS = [
    ("aioflask: build_environ", "aioflask/core/environ.py", ""),
    (
        "aioflask: start_response (headers)",
        "aioflask/core/http.py",
        r"HTTPConnection\.(start_response|start)",
    ),
    ("aioflask: core/bridge.py (drive, greenlet switches)", "aioflask/core/bridge.py", ""),
    ("aioflask: core (HTTPConnection, Receiver, InputStream)", "aioflask/core/", ""),
    ("aioflask: other", "aioflask/", ""),
    ("flask: ctx.py (contexts)", "flask/ctx.py", ""),
    ("flask: sessions", "flask/sessions.py", ""),
    ("flask: json", "flask/json/", ""),
    ("flask: app.py & sansio (dispatch)", "flask/", ""),
    ("werkzeug: routing", "werkzeug/routing/", ""),
    ("werkzeug: datastructures (Headers...)", "werkzeug/datastructures/", ""),
    ("werkzeug: request/response wrappers", "werkzeug/", ""),
    ("jinja2", "jinja2/", ""),
    ("blinker (signals)", "blinker/", ""),
    ("uvicorn: protocol, parsing, send", "uvicorn/", ""),
    ("granian: ASGI glue (Python side)", "granian/", ""),
    ("asyncio", "asyncio/", ""),
    ("encodings (idna, utf-8)", "encodings/", ""),
    ("json (stdlib)", "json/", ""),
    ("the view (benchmarks/apps)", "apps/", ""),
]

#: (label, regex on "func (file" of any frame): inclusive time.
STAGES = [
    ("uvicorn: data_received (parse, new request)", r"^HttpToolsProtocol\.data_received"),
    ("uvicorn: RequestResponseCycle.run_asgi (whole app)", r"^RequestResponseCycle\.run_asgi"),
    ("uvicorn: send (encode + write)", r"^RequestResponseCycle\.send "),
    ("granian: ASGI callback wrapper (whole app)", r"\(granian/asgi\.py"),
    ("aioflask: serve_http (outside the greenlet)", r"^serve_http "),
    ("aioflask: build_environ", r"^build_environ "),
    ("aioflask: drive (switch into the greenlet)", r"^drive "),
    ("aioflask: Responder.run (in the greenlet)", r"^Responder\.run "),
    ("flask: Flask.wsgi_app", r"^Flask\.wsgi_app "),
    ("flask: request_context (Request, url adapter)", r"^Flask\.request_context "),
    ("werkzeug: Map.bind_to_environ", r"^Map\.bind_to_environ "),
    ("encodings.idna (server name, per request)", r"\(encodings/idna\.py"),
    ("flask: RequestContext.push (+ app ctx, session open, match)", r"^RequestContext\.push "),
    ("flask: open_session", r"^\w+\.open_session "),
    ("flask: match_request", r"^RequestContext\.match_request "),
    ("flask: full_dispatch_request", r"^Flask\.full_dispatch_request "),
    ("flask: dispatch_request (the view)", r"^Flask\.dispatch_request "),
    ("flask: finalize_request (make_response, after_request)", r"^Flask\.finalize_request "),
    ("flask: make_response", r"^Flask\.make_response "),
    ("flask: process_response (session save)", r"^Flask\.process_response "),
    ("aioflask: Responder.start_response", r"^Responder\.start_response "),
    ("aioflask: Responder._iterate (body)", r"^Responder\._iterate "),
    ("flask: RequestContext.pop (teardown, ctx pop)", r"^RequestContext\.pop "),
    ("response close", r"^(Response|ClosingIterator)\.close "),
    ("blinker signals", r"\(blinker/"),
]


def parse_raw(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) output: [(frames root first as (func, file)), count]."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # a stack py-spy could not read whole (--nonblocking)
        frames = []
        for text in stack.split(";"):
            match = _FRAME.match(text)
            frames.append((match["func"], match["file"]) if match else (text, ""))
        samples.append((frames, int(count)))
    return samples


def component(func: str, file: str) -> str:
    for label, part, funcs in COMPONENTS:
        if part in file and (not funcs or re.fullmatch(funcs, func)):
            return label
    return "other: " + (file.rsplit("/", 1)[-1] or func)


def summarize(samples: list[tuple[list[tuple[str, str]], int]], top: int) -> str:
    total = sum(count for _, count in samples)
    by_component: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    by_stage: collections.Counter[str] = collections.Counter()
    stages = [(label, re.compile(pattern)) for label, pattern in STAGES]
    for frames, count in samples:
        func, file = frames[-1]
        by_component[component(func, file)] += count
        by_function[f"{func} ({file})"] += count
        texts = [f"{f} ({p}" for f, p in frames]
        for label, pattern in stages:
            if any(pattern.search(text) for text in texts):
                by_stage[label] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    lines = [f"{total} samples (active CPU only)", "", "Self time by component:"]
    lines += [f"  {pct(n)}  {label}" for label, n in by_component.most_common()]
    lines += ["", "Inclusive time by stage (nested, so not additive):"]
    lines += [f"  {pct(by_stage[label])}  {label}" for label, _ in STAGES]
    lines += ["", f"Top {top} functions (self time):"]
    lines += [f"  {pct(n)}  {name}" for name, n in by_function.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="aioflask", choices=sorted(STACKS))
    parser.add_argument("--endpoint", default="ping", choices=sorted(ROUTES))
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=10)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--speedscope", type=Path, help="also record a speedscope file")
    args = parser.parse_args(argv)
    # The venv's scripts need not be on PATH (python run as .venv/bin/python).
    py_spy = shutil.which(
        "py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if py_spy is None:
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    raw = args.raw or Path(tempfile.mkdtemp()) / "pyspy.txt"
    fmt, out = ("speedscope", args.speedscope) if args.speedscope else ("raw", raw)
    method, path = ROUTES[args.endpoint]
    with Server(STACKS[args.stack]) as server:
        url = server.url + path
        post = method == "POST"
        wrk(url, connections=args.connections, duration=2, post=post)
        spy = subprocess.Popen(
            pinned(
                [
                    *(py_spy, "record", "--pid", str(server.pid), "--nonblocking"),
                    *("--rate", str(args.rate), "--duration", f"{args.duration:.0f}"),
                    *("--format", fmt, "-o", str(out)),
                    *(
                        ("--subprocesses",)
                        if STACKS[args.stack].argv[1] in ("gunicorn", "granian")
                        else ()
                    ),
                ],
                CLIENT_CPU,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        result = wrk(url, connections=args.connections, duration=args.duration + 1, post=post)
        log = spy.communicate(timeout=60)[0]
    if spy.returncode != 0:
        print(log, file=sys.stderr)
        return 1
    print(
        f"{args.stack} {method} {path}, {args.connections} connections:"
        f" {result.rps:,.0f} req/s under py-spy (--nonblocking, {args.rate} Hz)"
    )
    if fmt == "speedscope":
        print(f"speedscope profile: {out}")
        return 0
    print(summarize(parse_raw(raw), args.top))
    if args.raw:
        print(f"collapsed stacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
