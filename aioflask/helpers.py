"""Helpers that differ from Flask's: streaming with context, blocking code."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import flask
import greenlet

from .bridge import AwaitOutsideBridgeError, await_, in_bridge, run_in_executor
from .wrappers import sync_body

__all__ = [
    "can_wait",
    "in_thread",
    "run_blocking",
    "run_in_thread",
    "run_on_bridge",
    "stream_with_context",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: The attribute :func:`in_thread` sets on a function.
THREAD_MARK = "__aioflask_in_thread__"


def stream_with_context(generator_or_function: Any) -> Any:
    """Flask's :func:`~flask.stream_with_context`, also for async generators.

    The request context stays pushed while the body is produced, so an async
    generator can use ``request`` and ``session`` while the response streams.

    .. versionadded:: 0.5
    """
    if callable(generator_or_function) and not hasattr(generator_or_function, "__aiter__"):

        @functools.wraps(generator_or_function)
        def decorator(*args: Any, **kwargs: Any) -> Any:
            return stream_with_context(generator_or_function(*args, **kwargs))

        return decorator
    return flask.stream_with_context(sync_body(generator_or_function))


def in_thread(func: F) -> F:
    """Run this blocking sync view or hook in a worker thread.

    Sync views and hooks run on the event loop by default: fast, but a blocking
    call (a sync database driver, ``time.sleep``, a slow file system) stalls
    every other request of the process while it waits. Decorated functions run
    in the app's thread pool instead (``AIOFLASK_THREADS`` threads), with
    Flask's contexts copied; they may still call :func:`~aioflask.await_`.
    Put it below ``@app.route``::

        @app.get("/report")
        @in_thread
        def report():
            return slow_sync_query()

    The ``AIOFLASK_SYNC_IN_THREAD`` config key does this for every sync view and
    hook of the app.

    .. versionadded:: 0.5
    """
    setattr(func, THREAD_MARK, True)
    return func


def _thread_pool() -> Executor | None:
    """The current app's thread pool; None (the loop's) outside an app context."""
    if not flask.has_app_context():
        return None
    return getattr(flask.current_app._get_current_object(), "thread_pool", None)  # type: ignore[attr-defined]


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking sync function in a worker thread and await its result.

    It runs in the app's thread pool (``AIOFLASK_THREADS`` threads; the loop's
    default pool outside an app context), sees a copy of the caller's context
    variables (so ``request``, ``g`` and ``current_app`` work there) and may
    call :func:`~aioflask.await_`, which then waits on the loop. If the caller
    is cancelled, the cancellation is raised once the function has returned:
    a thread cannot be stopped.

    .. versionadded:: 0.5
    """
    return await run_in_executor(_thread_pool(), fn, *args, **kwargs)


def run_blocking(
    func: Callable[..., Any], pool: Callable[[], Executor | None]
) -> Callable[..., Any]:
    """Wrap a sync function so that, on the bridge, it runs in ``pool()``'s threads.

    Outside the bridge (WSGI mode, CLI) it is called directly.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not in_bridge():
            return func(*args, **kwargs)
        return await_(run_in_executor(pool(), func, *args, **kwargs))

    return wrapper


class _Waiter(greenlet.greenlet):  # type: ignore[misc]
    """The greenlet of a :func:`run_on_bridge` call: sync code, no loop running.

    Marked as a greenlet provider for SQLAlchemy: its ``await_()`` switches
    each awaitable of an asyncio driver to the parent, which waits for it on
    the thread's private loop (through :func:`~aioflask.await_`).
    """

    __slots__ = ()
    __sqlalchemy_greenlet_provider__ = True


def can_wait() -> bool:
    """Whether sync code here may query through SQLAlchemy's asyncio drivers.

    True in a bridge greenlet (a view, a hook, the test runner) and in a
    :func:`run_on_bridge` call (a command, a script).
    """
    return in_bridge() or isinstance(greenlet.getcurrent(), _Waiter)


def run_on_bridge(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call a sync function that waits like a view, from sync code where no loop runs.

    For scripts and sync tests that use code written for views: what
    the function waits for through :func:`~aioflask.await_` or an asyncio
    driver of SQLAlchemy (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``)
    is awaited on a private event loop of this thread (kept between calls, so
    a database pool's connections stay usable)::

        def main():
            with app.app_context():
                db.create_all()

        run_on_bridge(main)

    The loop runs only during those waits: the function's own code runs as
    plain sync code, so it may still call ``asyncio.run()``. On the bridge
    already (a view, a command), ``fn`` is simply called. From a coroutine,
    use ``await run_sync(fn)`` instead (this raises
    :exc:`~aioflask.AwaitOutsideBridgeError` there).

    .. versionadded:: 0.5
    """
    if can_wait():
        return fn(*args, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise AwaitOutsideBridgeError(
            "run_on_bridge() was called from a coroutine running on the event loop."
            " Use 'await aioflask.run_sync(fn)' here."
        )
    waiter = _Waiter(fn)
    # Share the caller's context variables (the app context pushed around
    # the call, and those the function pushes) with the coroutines awaited.
    waiter.gr_context = greenlet.getcurrent().gr_context
    result: Any = waiter.switch(*args, **kwargs)
    while not waiter.dead:
        # SQLAlchemy's await_() switched an awaitable here: wait for it on the
        # private loop (no loop runs in between), then switch back in with the
        # outcome; an error is thrown in at that await_() with its traceback.
        try:
            value = await_(result)
        except BaseException as exc:
            result = waiter.throw(type(exc), exc, exc.__traceback__)
        else:
            result = waiter.switch(value)
    return result  # type: ignore[no-any-return]
