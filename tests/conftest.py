"""Shared fixtures: real uvicorn servers in subprocesses, httpx clients for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

import aioflask
from _helpers import asgi_client
from _uvicorn import UvicornProcess


@pytest.fixture
def app() -> aioflask.Flask:
    """An app with a secret key (test modules may define their own ``app``)."""
    app = aioflask.Flask(__name__)
    app.config["SECRET_KEY"] = "test secret"
    return app


@pytest.fixture
async def http(app: aioflask.Flask) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in-process over ASGI."""
    async with asgi_client(app) as http:
        yield http


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., UvicornProcess]]:
    """Start uvicorn servers for one test: ``start_server("mod:app", env=..., wait=True)``.

    Every server still running at teardown is killed (a test that needs a clean
    shutdown signals it itself): it may hang on purpose.
    """
    servers: list[UvicornProcess] = []

    def start(
        target: str,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        wait: bool = True,
    ) -> UvicornProcess:
        log_path = tmp_path / f"uvicorn-{len(servers)}.log"
        server = UvicornProcess(target, log_path, env=env, args=args)
        servers.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornProcess]:
    """``tests/apps/server_app.py`` under one uvicorn for the whole session."""
    log_path = tmp_path_factory.mktemp("uvicorn") / "server_app.log"
    process = UvicornProcess("server_app:app", log_path)
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture
async def client(server: UvicornProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for :func:`server`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def own_server(start_server: Callable[..., UvicornProcess]) -> UvicornProcess:
    """``tests/apps/server_app.py`` under a uvicorn of its own, for one test.

    For tests that may leave the server stuck when they fail.
    """
    return start_server("server_app:app")


@pytest.fixture
async def own_client(own_server: UvicornProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for :func:`own_server` (short timeout: it may hang)."""
    async with httpx.AsyncClient(base_url=own_server.url, timeout=5) as client:
        yield client
