"""The greenlet bridge: sync code that awaits, on the running event loop.

:func:`run_sync` runs a sync callable in a child greenlet of the caller. Each
time that callable calls :func:`await_`, the child switches back to the parent
(the coroutine that called :func:`run_sync`), which awaits the awaitable on the
loop and switches back in with its result or its exception. No thread, no
second event loop.

This module imports nothing from Flask, Werkzeug or Jinja: it is reusable on its
own. The pattern follows SQLAlchemy's ``util/concurrency.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import greenlet

__all__ = [
    "AwaitOutsideBridgeError",
    "await_",
    "drive",
    "in_bridge",
    "iterate",
    "run_in_thread",
    "run_sync",
]

T = TypeVar("T")

#: The loop that dispatched a function to a worker thread with
#: :func:`run_in_thread`; :func:`await_` in that thread awaits on it.
_thread_loop: contextvars.ContextVar[asyncio.AbstractEventLoop] = contextvars.ContextVar(
    "aioflask_thread_loop"
)
#: One private loop per thread, for :func:`await_` where no loop runs.
_private = threading.local()


class AwaitOutsideBridgeError(RuntimeError):
    """:func:`await_` was called in a coroutine running on the event loop.

    Sync code can only wait for an awaitable when it was started through the
    bridge (a view, hook or handler of an aioflask app, or :func:`run_sync`).
    In a coroutine, use ``await`` instead.
    """


class _BridgeGreenlet(greenlet.greenlet):  # type: ignore[misc]
    """A child greenlet started by :func:`run_sync`; its parent drives the loop."""

    __slots__ = ()


async def drive(
    fn: Callable[..., T],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    on_suspend: Callable[[], object] | None = None,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a child greenlet and serve its awaits.

    :param on_suspend: called once, the first time the child waits for an
        awaitable (so costs that only matter to code that suspends, such as
        watching for a client disconnect, are paid only by such code).
    """
    __tracebackhide__ = True  # pytest
    __traceback_hide__ = True  # Werkzeug's debugger
    current = greenlet.getcurrent()
    child = _BridgeGreenlet(fn, current)
    # Share the caller's Context object: ContextVars that Flask sets in the
    # child (the app and request contexts) must be visible to the coroutines
    # the parent awaits for it, and vice versa. A new greenlet would otherwise
    # start in an empty context.
    child.gr_context = current.gr_context
    result: Any = child.switch(*args, **(kwargs or {}))
    cancelled: BaseException | None = None
    while not child.dead:
        # The child switched back to us with an awaitable: await it here, on
        # the loop, then switch back in with its value or its exception.
        if on_suspend is not None:
            on_suspend()
            on_suspend = None
        try:
            value = await result
        except asyncio.CancelledError as exc:
            # Throw the cancellation in at the child's await_() so its
            # finally blocks run (contexts popped, teardown called); it is
            # re-raised below even if the child swallows it.
            cancelled = exc
            result = child.throw(exc)
        except BaseException as exc:
            result = child.throw(exc)
        else:
            result = child.switch(value)
    if cancelled is not None:
        raise cancelled
    return result  # type: ignore[no-any-return]


async def run_sync(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Call a sync function from a coroutine; it may :func:`await_` on this loop.

    The function runs in a child greenlet sharing the caller's context
    variables. Exceptions propagate both ways with their tracebacks, and a
    cancellation of the caller is thrown into the function at its pending
    :func:`await_` call, then re-raised.

    .. versionadded:: 0.5
    """
    __tracebackhide__ = True
    __traceback_hide__ = True
    return await drive(fn, args, kwargs)


def await_(aw: Awaitable[T]) -> T:
    """Wait for an awaitable from sync code and return its result.

    - In code run through the bridge (aioflask views, hooks, handlers,
      :func:`run_sync`): the awaitable runs on the event loop while this
      greenlet is suspended; other requests go on meanwhile.
    - In a worker thread started by :func:`run_in_thread`: the awaitable runs
      on the loop that started the thread; this thread blocks until done.
    - Where no event loop runs (a CLI command, a script, WSGI mode): it runs to
      completion on a private event loop kept for this thread.
    - In a coroutine on the running loop: :exc:`AwaitOutsideBridgeError`, and a
      coroutine passed in is closed. Use ``await`` there.

    .. versionadded:: 0.5
    """
    __tracebackhide__ = True
    __traceback_hide__ = True
    current = greenlet.getcurrent()
    if isinstance(current, _BridgeGreenlet):
        # Suspend this greenlet: drive() awaits `aw` and switches back.
        return current.parent.switch(aw)  # type: ignore[no-any-return]
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if isinstance(aw, Coroutine):
            aw.close()
        raise AwaitOutsideBridgeError(
            "await_() was called from a coroutine running on the event loop; it"
            " can only wait from sync code started through the bridge (a view,"
            " hook or handler, or aioflask.bridge.run_sync()). Use 'await' here."
        )
    loop = _thread_loop.get(None)
    if loop is not None and loop.is_running():
        # A worker thread of a running loop: run it there, block this thread.
        return asyncio.run_coroutine_threadsafe(_as_coroutine(aw), loop).result()
    return _private_loop().run_until_complete(aw)


def in_bridge() -> bool:
    """Whether the current code runs in a greenlet started by the bridge."""
    return isinstance(greenlet.getcurrent(), _BridgeGreenlet)


async def _as_coroutine(aw: Awaitable[T]) -> T:
    return await aw


def _private_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_private, "loop", None)
    if loop is None or loop.is_closed():
        loop = _private.loop = asyncio.new_event_loop()
    return loop


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking sync function in the loop's default thread pool.

    The function sees a copy of the caller's context variables (so Flask's
    ``request``, ``g`` and ``current_app`` work there) and may call
    :func:`await_`, which then waits on this loop.

    .. versionadded:: 0.5
    """
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    ctx.run(_thread_loop.set, loop)
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await loop.run_in_executor(None, call)


class iterate(Iterator[T]):  # noqa: N801  (used like a function)
    """Iterate an async iterable from sync code, one :func:`await_` per item.

    ``close()`` closes the async iterator (``aclose()``) if it has not finished.

    .. versionadded:: 0.5
    """

    __slots__ = ("_done", "_it")

    def __init__(self, aiterable: AsyncIterable[T]) -> None:
        self._it = aiterable.__aiter__()
        self._done = False

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            return await_(self._it.__anext__())
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        except BaseException:
            self._done = True
            raise

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            await_(aclose())
