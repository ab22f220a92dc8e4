"""The stacks under test, and starting one as a server on loopback.

Each stack is a server command for one app of ``apps/``, with the endpoints it
serves. Every server runs one worker process, pinned to CPU 0 when the machine
has a second CPU for the load generator (granian's main process and its worker
both).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SERVER_CPU = 0
CLIENT_CPU = 1

ALL_ENDPOINTS = ("ping", "sleep", "tmpl", "echo", "block", "db", "file")
#: Endpoint name -> (method, path).
ROUTES = {
    "ping": ("GET", "/"),
    "sleep": ("GET", "/sleep"),
    "tmpl": ("GET", "/tmpl"),
    "echo": ("POST", "/echo"),
    "block": ("GET", "/block"),
    "db": ("GET", "/db"),
    "file": ("GET", "/static/1mib.bin"),
}


def uvicorn(target: str, *, lifespan: bool = True) -> list[str]:
    """uvicorn with uvloop and httptools, one worker, no access log."""
    argv = [
        *("-m", "uvicorn", f"apps.{target}", "--app-dir", str(BENCH_DIR)),
        *("--loop", "uvloop", "--http", "httptools"),
        *("--no-access-log", "--log-level", "warning"),
    ]
    if not lifespan:
        argv += ["--lifespan", "off"]
    return argv


def gunicorn(target: str, worker: str, threads: int = 1) -> list[str]:
    argv = [
        *("-m", "gunicorn", "--chdir", str(BENCH_DIR), "--workers", "1"),
        *("--worker-class", worker, "--log-level", "warning"),
    ]
    if threads > 1:
        argv += ["--threads", str(threads)]
    return [*argv, f"apps.{target}"]


def granian(target: str, interface: str = "asgi", threads: int = 1, *options: str) -> list[str]:
    """granian with uvloop, one worker (``asginl``: ASGI without lifespan)."""
    argv = [
        *("-m", "granian", "--interface", interface, "--working-dir", str(BENCH_DIR)),
        *("--workers", "1", "--log-level", "warning", *options),
    ]
    if interface == "wsgi":
        argv += ["--blocking-threads", str(threads)]
    else:
        argv += ["--loop", "uvloop"]
    return [*argv, f"apps.{target}"]


def hypercorn(target: str) -> list[str]:
    return [
        *("-m", "hypercorn", "--worker-class", "uvloop"),
        *("--workers", "1", "--log-level", "warning", f"apps.{target}"),
    ]


@dataclass(frozen=True)
class Stack:
    name: str
    #: How it is served, for the report.
    server: str
    #: Arguments after ``python``; ``--host``/``--port`` (or ``--bind``) follow.
    argv: list[str]
    endpoints: tuple[str, ...]
    #: Whether it runs by default (others only when named with --stacks).
    default: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def command(self, port: int) -> list[str]:
        if self.argv[1] in ("gunicorn", "hypercorn"):
            bind = ["--bind", f"{HOST}:{port}"]
        else:
            bind = ["--host", HOST, "--port", str(port)]
        return [sys.executable, *self.argv, *bind]


_UV = "uvicorn (uvloop, httptools)"
_GR = "granian ASGI (uvloop)"
_EVERY = ("ping", "sleep", "tmpl", "echo")

STACKS: dict[str, Stack] = {
    s.name: s
    for s in [
        Stack("aioflask", _UV, uvicorn("aioflask_app:app"), (*_EVERY, "block", "db", "file")),
        Stack(
            "aioflask-loop-pool",
            _UV + ", AIOFLASK_THREADS=None (asyncio's pool)",
            uvicorn("aioflask_app:app"),
            ("block",),
            default=False,
            env={"BENCH_THREADS": "loop"},
        ),
        # The garbage collector without the freeze after startup.
        Stack(
            "aioflask-no-gc-freeze",
            _UV + ", AIOFLASK_GC_FREEZE=False",
            uvicorn("aioflask_app:app"),
            _EVERY,
            default=False,
            env={"BENCH_GC_FREEZE": "off"},
        ),
        Stack(
            "ceiling",
            _UV + ", Flask wsgi_app inline",
            uvicorn("ceiling_app:app", lifespan=False),
            ("ping", "tmpl", "echo"),
        ),
        Stack("aioflask-granian", _GR, granian("aioflask_app:app"), (*_EVERY, "file")),
        # The static file streamed from Python, as without pathsend.
        Stack(
            "aioflask-granian-no-pathsend",
            _GR + ", pathsend hidden from the app",
            granian("aioflask_app:app"),
            ("file",),
            default=False,
            env={"BENCH_PATHSEND": "off"},
        ),
        # granian's options that change how requests reach the Python thread.
        Stack(
            "aioflask-granian-rust-tasks",
            _GR + ", --task-impl rust",
            granian("aioflask_app:app", "asgi", 1, "--task-impl", "rust"),
            _EVERY,
            default=False,
        ),
        Stack(
            "aioflask-granian-st",
            _GR + ", --runtime-mode st",
            granian("aioflask_app:app", "asgi", 1, "--runtime-mode", "st"),
            _EVERY,
            default=False,
        ),
        Stack("raw-asgi", _UV, uvicorn("raw_app:app", lifespan=False), _EVERY),
        Stack("raw-asgi-granian", _GR, granian("raw_app:app", "asginl"), _EVERY),
        Stack(
            "raw-rsgi-granian",
            "granian RSGI (uvloop)",
            granian("rsgi_app:app", "rsgi"),
            _EVERY,
            default=False,
        ),
        Stack("starlette", _UV, uvicorn("starlette_app:app"), _EVERY),
        Stack("quart", _UV, uvicorn("quart_app:app"), _EVERY),
        Stack(
            "quart-hypercorn",
            "hypercorn (uvloop)",
            hypercorn("quart_app:app"),
            _EVERY,
            default=False,
        ),
        Stack(
            "flask-gunicorn-sync",
            "gunicorn sync worker",
            gunicorn("flask_app:app", "sync"),
            (*_EVERY, "block"),
        ),
        Stack(
            "flask-gunicorn-gthread",
            "gunicorn gthread, 32 threads",
            gunicorn("flask_app:app", "gthread", 32),
            (*_EVERY, "block", "db"),
        ),
        Stack(
            "flask-granian-wsgi",
            "granian WSGI, 32 threads",
            granian("flask_app:app", "wsgi", 32),
            (*_EVERY, "block"),
        ),
        Stack(
            "flask-gunicorn-gevent",
            "gunicorn gevent, 1,000 connections",
            gunicorn("flask_app:app", "gevent"),
            _EVERY,
        ),
        Stack(
            "flask-async-gunicorn-sync",
            "gunicorn sync worker, async def views",
            gunicorn("flask_app:async_app", "sync"),
            _EVERY,
        ),
        Stack(
            "flask-a2wsgi",
            _UV + ", a2wsgi (10 threads)",
            uvicorn("flask_app:a2wsgi_app", lifespan=False),
            (*_EVERY, "block"),
        ),
    ]
}


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(argv: list[str], cpu: int) -> list[str]:
    """``argv`` under ``taskset -c CPU`` when there are CPUs to spare."""
    return ["taskset", "-c", str(cpu), *argv] if can_pin() else argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    """One HTTP request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """One stack running as a server process (its own process group)."""

    def __init__(self, stack: Stack, *, pin: bool = True) -> None:
        self.stack = stack
        self.port = free_port()
        argv = stack.command(self.port)
        if pin:
            argv = pinned(argv, SERVER_CPU)
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept until stop)
            prefix=f"bench-{stack.name}-", suffix=".log", delete=False
        )
        env = {**os.environ, **stack.env, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            argv,
            cwd=BENCH_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The server's pid (``taskset`` execs the server in place)."""
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(
                    f"{self.stack.name} exited with {self.process.returncode}:\n{tail}"
                )
            try:
                status, _ = request(self.port, "GET", "/", timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.stack.name} not ready after {timeout} s:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it lingers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
