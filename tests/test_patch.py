"""aioflask.patch.wrap_async: decorators that call the view without ensure_sync.

The real extension that needs it (Flask-CORS's ``cross_origin``, Flask-Login's
``user_loader``) is tested in test_extensions.py; here, hand-written ones.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

import aioflask
import aioflask.patch
from aioflask import AwaitOutsideBridgeError, Flask, g, make_response, request
from aioflask.patch import wrap_async


def timed(view: Callable[..., Any]) -> Callable[..., Any]:
    """A typical third-party view decorator: calls the view, edits the response."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        response = make_response(view(*args, **kwargs))
        response.headers["X-Elapsed"] = f"{time.perf_counter() - start:.3f}"
        return response

    return wrapper


def handles(error: type[Exception], status: int) -> Callable[..., Any]:
    """A decorator factory that turns an exception of the view into a status."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except error as exc:
                return {"error": str(exc)}, status

        return wrapper

    return decorator


def test_is_importable_from_the_package() -> None:
    # ``import aioflask`` is enough to reach aioflask.patch.
    code = "import aioflask; print(aioflask.patch.wrap_async.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "aioflask.patch", result.stderr
    assert aioflask.patch.__all__ == ["wrap_async"]
    assert wrap_async.__doc__


async def test_a_decorator_that_calls_the_view_gets_a_coroutine_without_it() -> None:
    app = Flask(__name__)
    app.testing = True

    @app.get("/raw")
    @timed
    async def raw() -> Any:
        return "raw"

    with pytest.raises(TypeError, match="but it was a coroutine") as info:
        await app.test_client().get("/raw")
    # Close what the decorator left un-awaited (make_response's argument).
    tb = info.value.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if inspect.iscoroutine(value):
                value.close()
        tb = tb.tb_next


async def test_wrap_async_awaits_the_view_for_the_decorator() -> None:
    app = Flask(__name__)

    @app.get("/slow/<float:delay>")
    @wrap_async(timed)
    async def slow(delay: float) -> Any:
        await asyncio.sleep(delay)
        return {"path": request.path}

    response = await app.test_client().get("/slow/0.05")
    assert response.status_code == 200
    assert response.json == {"path": "/slow/0.05"}
    # The decorator measured the awaited view, not the creation of a coroutine.
    assert float(response.headers["X-Elapsed"]) >= 0.04


async def test_wrap_async_with_a_decorator_factory_and_exceptions() -> None:
    app = Flask(__name__)

    @app.get("/parse/<value>")
    @wrap_async(handles(ValueError, 422))
    async def parse(value: str) -> Any:
        await asyncio.sleep(0)
        return {"value": int(value)}

    client = app.test_client()
    assert (await client.get("/parse/12")).json == {"value": 12}
    # The view's exception reaches the decorator, raised at its call.
    response = await client.get("/parse/twelve")
    assert response.status_code == 422
    assert "invalid literal" in response.json["error"]


async def test_wrapped_views_run_concurrently_on_the_loop() -> None:
    app = Flask(__name__)
    in_flight = {"now": 0, "peak": 0}
    release = asyncio.Event()

    @app.get("/wait")
    @wrap_async(timed)
    async def wait() -> Any:
        in_flight["now"] += 1
        in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        await release.wait()
        in_flight["now"] -= 1
        return "done"

    client = app.test_client()

    async def open_the_gate() -> None:
        while in_flight["now"] < 3:
            await asyncio.sleep(0.001)
        release.set()

    *responses, _ = await asyncio.gather(*(client.get("/wait") for _ in range(3)), open_the_gate())
    assert [r.text for r in responses] == ["done"] * 3
    assert in_flight["peak"] == 3


async def test_endpoint_name_docs_and_attributes_are_kept() -> None:
    app = Flask(__name__)
    seen: list[Callable[..., Any]] = []

    def marks(view: Callable[..., Any]) -> Callable[..., Any]:
        seen.append(view)
        view.required_methods = {"OPTIONS"}  # type: ignore[attr-defined]
        return view

    @app.get("/named")
    @wrap_async(marks)
    async def named() -> Any:
        """The docstring."""
        return "named"

    assert "named" in app.view_functions
    (given,) = seen
    assert given.__name__ == "named"
    assert given.__doc__ == "The docstring."
    assert not inspect.iscoroutinefunction(given)
    assert inspect.iscoroutinefunction(given.__wrapped__)  # type: ignore[attr-defined]
    assert "OPTIONS" in app.url_map._rules_by_endpoint["named"][0].methods
    assert (await app.test_client().get("/named")).text == "named"


def test_sync_functions_pass_through_unchanged() -> None:
    seen: list[Callable[..., Any]] = []

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        seen.append(func)
        return func

    def view() -> str:
        return "sync"

    assert wrap_async(decorator)(view) is view
    assert seen == [view]


async def test_the_view_sees_the_request_context() -> None:
    app = Flask(__name__)

    @app.before_request
    def remember() -> None:
        g.marker = request.args.get("m")

    @app.get("/ctx")
    @wrap_async(timed)
    async def ctx() -> Any:
        await asyncio.sleep(0)
        return {"marker": g.marker}

    assert (await app.test_client().get("/ctx?m=x")).json == {"marker": "x"}


async def test_wrap_async_in_a_sync_view_run_in_a_thread() -> None:
    app = Flask(__name__)
    loops: list[asyncio.AbstractEventLoop] = []

    @wrap_async(lambda f: f)
    async def on_loop() -> str:
        loops.append(asyncio.get_running_loop())
        return "from the loop"

    @app.get("/threaded")
    @aioflask.in_thread
    def threaded() -> Any:
        return on_loop()

    assert (await app.test_client().get("/threaded")).text == "from the loop"
    assert loops == [asyncio.get_running_loop()]


def test_called_where_no_loop_runs() -> None:
    # A callback registered this way, called from a script or CLI command.
    registry: list[Callable[..., Any]] = []

    @wrap_async(lambda f: registry.append(f) or f)
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    assert registry == [double]
    assert double(21) == 42


async def test_called_from_an_async_view() -> None:
    # An async def view runs on the bridge: code it calls may wait.
    app = Flask(__name__)
    registry: list[Callable[..., Any]] = []

    @wrap_async(registry.append)
    async def lookup(key: str) -> str:
        await asyncio.sleep(0)
        return key.upper()

    @app.get("/lookup/<key>")
    async def view(key: str) -> Any:
        await asyncio.sleep(0)
        (registered,) = registry
        return {"value": registered(key)}

    assert (await app.test_client().get("/lookup/ab")).json == {"value": "AB"}


async def test_called_from_a_coroutine_raises() -> None:
    async def fetch() -> int:
        return 1

    adapted = wrap_async(lambda f: f)(fetch)
    # The coroutine it made is closed: no "never awaited" warning.
    with pytest.raises(AwaitOutsideBridgeError, match="Use 'await' here"):
        adapted()
    # Through run_sync, the same function works from a coroutine.
    assert await aioflask.run_sync(adapted) == 1
