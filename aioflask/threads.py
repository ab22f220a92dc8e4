"""Blocking sync code in worker threads: ``@in_thread``, ``run_in_thread``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import flask

from ._compat import current_object
from .core.bridge import await_, in_bridge, run_in_executor

__all__ = ["THREAD_MARK", "in_thread", "run_blocking", "run_in_thread"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: The attribute :func:`in_thread` sets on a function.
THREAD_MARK = "__aioflask_in_thread__"


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
    return getattr(current_object(flask.current_app), "thread_pool", None)


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
