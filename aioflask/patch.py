"""Adapters for third-party code that calls your functions without ``ensure_sync``.

Flask calls views, hooks and handlers through :meth:`Flask.ensure_sync
<aioflask.Flask.ensure_sync>`, so they may be ``async def``. Most extensions
do the same (Flask-Login's ``login_required``, Flask-Caching's ``cached``), but
some call the function they were given directly: Flask-CORS's
``cross_origin`` decorator, or callbacks such as Flask-Login's
``user_loader``. Given an ``async def`` function, they get a coroutine object
instead of its result. :func:`wrap_async` adapts such a decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any, TypeVar

from .core.bridge import make_sync

__all__ = ["wrap_async"]

R = TypeVar("R")


def wrap_async(decorator: Callable[[Callable[..., Any]], R]) -> Callable[[Callable[..., Any]], R]:
    """Adapt a decorator that calls the function it decorates synchronously.

    The returned decorator hands ``decorator`` a sync function in place of an
    ``async def`` one; when called, that function waits for the coroutine on
    the event loop with :func:`~aioflask.await_` and returns its result, so
    the decorator sees the value (a response, a user) it expects. Sync
    functions are passed through unchanged. ::

        from flask_cors import cross_origin
        from aioflask.patch import wrap_async

        @app.get("/api/data")
        @wrap_async(cross_origin(origins=["https://example.com"]))
        async def data():
            return await fetch_data()

    It works for a callback registrar too (anything that takes the function
    as its one argument)::

        @wrap_async(login_manager.user_loader)
        async def load_user(user_id):
            return await db.get_user(user_id)

    The name then refers to what ``decorator`` returned (the sync function,
    for a registrar that returns its argument).

    The adapted function waits like :func:`~aioflask.await_`: it may be
    called wherever Flask runs your code (sync or ``async def`` views, hooks,
    handlers, and the extensions they call), and from a CLI command or script,
    where it runs on a private loop. Called from a coroutine that aioflask did
    not start (a task of your own), it raises
    :exc:`~aioflask.AwaitOutsideBridgeError`: there, use
    ``await aioflask.run_sync(...)`` on the sync code that calls it.

    Decorators that call the function through ``current_app.ensure_sync``
    need no adapter.

    :param decorator: a decorator (for a decorator factory, call it first:
        ``wrap_async(cross_origin(...))``).

    .. versionadded:: 0.5
    """

    def adapted(func: Callable[..., Any]) -> R:
        if iscoroutinefunction(func):
            func = make_sync(func)
        return decorator(func)

    return adapted
