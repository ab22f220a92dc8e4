"""Contexts with ``async with``: nesting, re-entry, async teardown, errors outside."""

from __future__ import annotations

import asyncio

import pytest

from aioflask import Flask, current_app, g, request, session


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test"
    return app


async def test_async_with_app_context(app: Flask) -> None:
    async with app.app_context() as ctx:
        assert current_app._get_current_object() is app  # type: ignore[attr-defined]
        g.value = 1
        await asyncio.sleep(0)
        assert g.value == 1
        assert ctx.app is app
    with pytest.raises(RuntimeError, match="application context"):
        current_app.name  # noqa: B018


async def test_async_with_test_request_context(app: Flask) -> None:
    async with app.test_request_context("/path?x=1", method="POST"):
        assert request.path == "/path"
        assert request.args["x"] == "1"
        assert request.method == "POST"
        session["k"] = "v"
        assert current_app.name == app.name
    with pytest.raises(RuntimeError, match="request context"):
        request.path  # noqa: B018
    with pytest.raises(RuntimeError, match="request context"):
        session.get("k")


async def test_nested_and_reentrant(app: Flask) -> None:
    outer = app.app_context()
    async with outer:
        g.level = "outer"
        async with app.app_context():
            assert "level" not in g
            g.level = "inner"
        assert g.level == "outer"
        async with outer:  # re-entering the same context
            assert g.level == "outer"
        assert g.level == "outer"
    with pytest.raises(RuntimeError):
        g.level  # noqa: B018


async def test_async_teardown_functions_run(app: Flask) -> None:
    calls: list[str] = []

    @app.teardown_appcontext
    async def app_teardown(exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        calls.append(f"app:{exc!r}")

    @app.teardown_request
    async def request_teardown(exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        calls.append(f"request:{exc!r}")

    async with app.test_request_context("/"):
        pass
    assert calls == ["request:None", "app:None"]

    calls.clear()
    with pytest.raises(ValueError):
        async with app.app_context():
            raise ValueError("boom")
    assert calls == ["app:ValueError('boom')"]


async def test_sync_with_still_works(app: Flask) -> None:
    with app.app_context():
        assert current_app.name == app.name
    with app.test_request_context("/x"):
        assert request.path == "/x"


async def test_contexts_are_isolated_between_tasks(app: Flask) -> None:
    async def worker(name: str) -> str:
        async with app.test_request_context(f"/{name}"):
            await asyncio.sleep(0.01)
            return request.path

    assert await asyncio.gather(worker("a"), worker("b")) == ["/a", "/b"]


def test_outside_any_context_raises_flask_errors() -> None:
    for proxy, message in [
        (lambda: current_app.name, "application context"),
        (lambda: g.x, "application context"),
        (lambda: request.path, "request context"),
        (lambda: session.get("x"), "request context"),
    ]:
        with pytest.raises(RuntimeError, match=message):
            proxy()
