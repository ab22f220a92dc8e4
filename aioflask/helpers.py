"""Flask's helpers that aioflask extends: ``stream_with_context`` for async generators."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import flask
import greenlet

from .core.bridge import AwaitOutsideBridgeError, await_, in_bridge
from .wrappers import sync_body

__all__ = ["can_wait", "run_on_bridge", "stream_with_context"]

T = TypeVar("T")


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
