"""The chat example: in-process, served by ``flask aiorun``, and across processes via Redis.

The Redis tests start Debian's ``redis-server`` (``apt-get install
redis-server``; CI installs it). Without it they are skipped, except in CI
(``CI`` set), where they fail unless ``AIOFLASK_SKIP_REDIS=1``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from chat import broker_of, create_app
from websockets.asyncio.client import ClientConnection, connect

HERE = Path(__file__).parent
TIMEOUT = 10.0


async def next_json(ws: Any) -> dict[str, Any]:
    """The next message of a test-client or a real connection, as JSON."""
    receive = ws.receive if hasattr(ws, "receive") else ws.recv
    return json.loads(await asyncio.wait_for(receive(), TIMEOUT))


async def next_of_type(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = await next_json(ws)
        if message["type"] == kind:
            return message


# -- in-process ----------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    app = create_app()
    client = app.test_client()
    async with client.lifespan():
        yield client


async def test_page(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert b"new WebSocket(" in response.data


async def test_rooms_and_fan_out(client):
    async with (
        client.websocket("/ws/lobby?name=alice") as alice,
        client.websocket("/ws/lobby?name=bob") as bob,
        client.websocket("/ws/kitchen?name=carol") as carol,
    ):
        welcome = await next_json(alice)
        assert welcome == {
            "type": "welcome",
            "room": "lobby",
            "name": "alice",
            "worker": os.getpid(),
        }
        assert await next_of_type(bob, "welcome")
        assert await next_of_type(carol, "welcome")
        # alice sees bob join (her own join may come first).
        assert (await next_of_type(alice, "join"))["name"] in ("alice", "bob")
        await bob.send("hi alice")
        message = await next_of_type(alice, "message")
        assert message == {"type": "message", "name": "bob", "text": "hi alice"}
        assert await next_of_type(bob, "message") == message
        await carol.send("anyone?")
        assert (await next_of_type(carol, "message"))["text"] == "anyone?"
        await bob.close()
        assert await next_of_type(alice, "leave") == {"type": "leave", "name": "bob"}
        # Nothing from the kitchen reached the lobby.
        await alice.send("still here")
        assert (await next_of_type(alice, "message"))["text"] == "still here"


async def test_blank_and_binary_messages_are_ignored(client):
    async with client.websocket("/ws/quiet?name=dan") as dan:
        await next_of_type(dan, "join")
        await dan.send("   ")
        await dan.send(b"\x00")
        await dan.send("x" * 5000)
        message = await next_of_type(dan, "message")
        assert message["text"] == "x" * 2000


async def test_subscriptions_end_with_the_connection(client):
    broker = broker_of(client.application)
    async with client.websocket("/ws/lobby") as ws:
        await next_of_type(ws, "welcome")
        assert len(broker.rooms["lobby"]) == 1
    assert "lobby" not in broker.rooms


# -- served by flask aiorun ---------------------------------------------------------------

_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Served:
    """``flask --app chat aiorun`` (or uvicorn) in a subprocess, on a port it picks."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self.port: int | None = None
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=HERE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> Served:
        deadline = time.monotonic() + timeout
        while self.port is None:
            if match := _RUNNING.search(self.log):
                self.port = int(match.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{self.log}")
            else:
                time.sleep(0.05)
        while "Application startup complete" not in self.log:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{self.log}")
            time.sleep(0.05)
        return self

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        command = [sys.executable, "-m", "flask", "--app", "chat", "aiorun", "--port", "0", *args]
        server = Served(command, tmp_path / f"server-{len(servers)}.log", env or {})
        servers.append(server)
        return server.wait_ready()

    yield start
    for server in servers:
        server.stop()


async def test_flask_aiorun(serve):
    server = serve()
    async with (
        connect(server.url("/ws/lobby?name=alice")) as alice,
        connect(server.url("/ws/lobby?name=bob")) as bob,
    ):
        assert (await next_json(alice))["type"] == "welcome"
        await next_of_type(bob, "welcome")
        await next_of_type(alice, "join")
        await bob.send("hello over uvicorn")
        message = await next_of_type(alice, "message")
        assert message == {"type": "message", "name": "bob", "text": "hello over uvicorn"}
        await bob.close()
        assert await next_of_type(alice, "leave") == {"type": "leave", "name": "bob"}


# -- more than one process, through Redis ---------------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a Unix socket (no port to race for)."""
    executable = shutil.which("redis-server")
    if executable is None:
        # CI installs it and must run these tests; elsewhere they are skipped
        # with a reason, so that the README's test command works anywhere.
        if os.environ.get("CI") and os.environ.get("AIOFLASK_SKIP_REDIS") != "1":
            pytest.fail("redis-server is not installed: 'apt-get install redis-server'.")
        pytest.skip("redis-server is not installed ('apt-get install redis-server' to run)")
    path = Path("/tmp") / f"aioflask-redis-{os.getpid()}-{id(tmp_path)}.sock"  # short: AF_UNIX
    log = tmp_path / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(executable, "--port", "0", "--unixsocket", str(path)),
                *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(path))
                    probe.sendall(b"PING\r\n")
                    if probe.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"unix://{path}"
    finally:
        process.terminate()
        process.wait(10)
        path.unlink(missing_ok=True)


async def test_redis_broker_in_process(redis_url):
    client = create_app(redis_url).test_client()
    async with (
        client.lifespan(),
        client.websocket("/ws/r?name=a") as a,
        client.websocket("/ws/r?name=b") as b,
    ):
        await next_of_type(a, "welcome")
        await next_of_type(b, "welcome")
        await a.send("through redis")
        assert (await next_of_type(b, "message"))["text"] == "through redis"


async def cross_process_exchange(one: ClientConnection, other: ClientConnection) -> None:
    """A message sent to one process reaches a client of the other, both ways."""
    await next_of_type(one, "join")
    await one.send("sent to one worker")
    message = await next_of_type(other, "message")
    assert message == {"type": "message", "name": "one", "text": "sent to one worker"}
    await other.send("and back")
    while (message := await next_of_type(one, "message"))["name"] == "one":
        pass  # its own message comes back first
    assert message == {"type": "message", "name": "other", "text": "and back"}


async def test_two_processes_share_rooms_through_redis(serve, redis_url):
    """Two servers on two ports: each client is surely on its own process."""
    first = serve(env={"CHAT_REDIS_URL": redis_url})
    second = serve(env={"CHAT_REDIS_URL": redis_url})
    async with (
        connect(first.url("/ws/lobby?name=one")) as one,
        connect(second.url("/ws/lobby?name=other")) as other,
    ):
        pids = {(await next_json(one))["worker"], (await next_json(other))["worker"]}
        assert pids == {first.process.pid, second.process.pid}
        await cross_process_exchange(one, other)


async def test_two_workers_share_rooms_through_redis(serve, redis_url):
    """``flask aiorun --workers 2``: clients on both workers of one server."""
    server = serve("--workers", "2", env={"CHAT_REDIS_URL": redis_url})
    deadline = time.monotonic() + 30
    while server.log.count("Application startup complete") < 2:  # both workers
        assert time.monotonic() < deadline, server.log
        await asyncio.sleep(0.05)
    clients: dict[int, ClientConnection] = {}
    spare: list[ClientConnection] = []
    try:
        for _ in range(50):  # the kernel spreads connections over the workers
            ws = await connect(server.url(f"/ws/lobby?name={'one' if not clients else 'other'}"))
            worker = (await next_json(ws))["worker"]
            if worker in clients:
                spare.append(ws)
                continue
            clients[worker] = ws
            if len(clients) == 2:
                break
        assert len(clients) == 2, "50 connections all went to one worker"
        for ws in spare:  # only the two clients stay in the room
            await ws.close()
        one, other = clients.values()
        await cross_process_exchange(one, other)
    finally:
        for ws in [*clients.values(), *spare]:
            await ws.close()
