"""CPU instructions per request inside a real server: uvicorn or granian, per layer.

Each row serves one app of ``apps/`` under valgrind's callgrind (server and
app together: the server's parsing, its ASGI glue, the app), warms it up,
zeroes the counters of every process of the server (granian's main process
and its worker), sends N keep-alive requests on one connection from this
process (not counted), and dumps the counters again: instructions / N is
what one request costs that server, start-up and shut-down excluded. Like
``instructions.py`` the counts repeat closely on a busy machine; wall-clock
req/s do not.

    python benchmarks/server_instructions.py                    # every row, ~10 min
    python benchmarks/server_instructions.py --rows raw,aioflask --servers granian -n 500

The rows (``apps/layers_app.py`` says what each layer adds to the one before):

- ``raw``: a bare ASGI function;
- ``translate``: aioflask's ASGI <-> WSGI translation inline, a WSGI function;
- ``bridge``: the same through ``serve_http`` (bridge greenlet, disconnect watch);
- ``flask``: plain Flask's ``wsgi_app`` (JSON view) through ``serve_http``;
- ``flask-str``: the same, the view returns a string (no JSON);
- ``ceiling``: plain Flask inline on the loop, no bridge (``apps/ceiling_app.py``);
- ``aioflask``: the benchmark's aioflask app (``apps/aioflask_app.py``).

Needs ``valgrind`` (Debian's package) and ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from stacks import BENCH_DIR, HOST, free_port

ROWS = {
    "raw": ("apps.layers_app:raw", False),
    "translate": ("apps.layers_app:translate", False),
    "bridge": ("apps.layers_app:bridge", False),
    "flask-str": ("apps.layers_app:flask_str", False),
    "flask": ("apps.layers_app:flask_layer", False),
    "ceiling": ("apps.ceiling_app:app", False),
    "aioflask": ("apps.aioflask_app:app", True),
    "raw-app": ("apps.raw_app:app", False),
    # Plain Flask on granian's WSGI interface, 32 blocking threads, as run.py's
    # flask-granian-wsgi stack (granian only).
    "flask-wsgi": ("apps.flask_app:app", None),
}
SERVERS = ("uvicorn", "granian")


def server_argv(server: str, target: str, lifespan: bool | None, port: int) -> list[str]:
    """The server's command line; ``lifespan`` None: WSGI (granian only)."""
    if server == "uvicorn":
        return [
            *("-m", "uvicorn", target, "--app-dir", str(BENCH_DIR)),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning", "--lifespan", "on" if lifespan else "off"),
            *("--host", HOST, "--port", str(port)),
        ]
    # granian forks its worker, and callgrind_control cannot reach a forked
    # child: spawn it (a new process under valgrind, --trace-children=yes).
    launcher = (
        "import multiprocessing, sys; multiprocessing.set_start_method('spawn');"
        "from granian.cli import entrypoint; sys.argv[0] = 'granian'; entrypoint()"
    )
    if lifespan is None:
        interface = ["--interface", "wsgi", "--blocking-threads", "32"]
    else:
        interface = ["--interface", "asgi" if lifespan else "asginl", "--loop", "uvloop"]
    return [
        *("-c", launcher, *interface),
        *("--working-dir", str(BENCH_DIR), "--log-level", "warning"),
        *("--host", HOST, "--port", str(port), target),
    ]


def callgrind(pids: list[int], command: str) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", command, str(pid)], capture_output=True, check=True)


def dumped(out_dir: Path, pid: int) -> int:
    """Instructions in the newest dump of ``pid``."""
    dumps = sorted(out_dir.glob(f"cg.{pid}.*"), key=lambda p: int(p.suffix[1:]))
    text = dumps[-1].read_text(errors="replace")
    match = re.search(r"^summary: (\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no summary in {dumps[-1]}")
    return int(match.group(1))


def get(conn: http.client.HTTPConnection, path: str, body: bytes | None = None) -> None:
    """GET ``path``, or POST ``body`` to it."""
    if body is None:
        conn.request("GET", path)
    else:
        conn.request("POST", path, body, {"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}: {body[:200]!r}")


def measure(server: str, row: str, n: int, path: str, body: bytes | None = None) -> float:
    target, lifespan = ROWS[row]
    port = free_port()
    out_dir = Path(tempfile.mkdtemp(prefix="server-instructions-"))
    argv = [
        *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p"),
        "--trace-children=yes",
        sys.executable,
        *server_argv(server, target, lifespan, port),
    ]
    log = out_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=BENCH_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                get(conn, path, body)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text()
                    raise RuntimeError(f"{server} {row} did not start:\n{output}") from None
                time.sleep(0.5)
        for _ in range(100):  # warm-up: caches, lazy imports, the bridge's pool
            get(conn, path, body)
        pids = [process.pid, *(c.pid for c in psutil.Process(process.pid).children(True))]
        callgrind(pids, "-z")
        for _ in range(n):
            get(conn, path, body)
        callgrind(pids, "-d")
        conn.close()
        return sum(dumped(out_dir, pid) for pid in pids) / n
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(out_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("-n", type=int, default=1000, help="requests counted per row")
    parser.add_argument("--path", default="/", help="the request path (default: the ping)")
    parser.add_argument(
        "--post", type=int, metavar="BYTES", help="POST a body of this size (/echo: 65536)"
    )
    args = parser.parse_args()
    body = None if args.post is None else b"x" * args.post
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    rows = args.rows.split(",")
    servers = args.servers.split(",")
    counts = {
        (s, r): measure(s, r, args.n, args.path, body)
        for r in rows
        for s in servers
        if s == "granian" or ROWS[r][1] is not None
    }
    method = "GET" if body is None else f"POST {len(body)} bytes to"
    print(f"{method} {args.path}, {args.n} requests on one keep-alive connection, per request:\n")
    print("| row | " + " | ".join(servers) + " |")
    print("|---|" + "---:|" * len(servers))
    for row in rows:
        cells = " | ".join(f"{counts[s, row]:,.0f}" if (s, row) in counts else "-" for s in servers)
        print(f"| {row} | {cells} |")


if __name__ == "__main__":
    main()
