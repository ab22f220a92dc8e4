"""The greenlet bridge: sync code that awaits, on the running event loop.

:func:`run_sync` runs a sync callable in a worker greenlet whose parent is
the caller. When that callable calls :func:`await_`, the awaitable is stepped
right there, in the worker; each time it yields to the event loop, the worker
switches to the parent (the coroutine in :func:`drive`), which yields the same
object to the task and switches back in with what the task sends, or throws in
the cancellation. No thread, no second event loop; and sync code that an
awaited coroutine calls may :func:`await_` too.

This module imports nothing from Flask, Werkzeug or Jinja: it is reusable on its
own. The pattern follows SQLAlchemy's ``util/concurrency.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Generator, Iterator
from concurrent.futures import Executor
from types import CoroutineType
from typing import Any, TypeVar

import greenlet

__all__ = [
    "AwaitOutsideBridgeError",
    "Cancellation",
    "await_",
    "called_from_sync",
    "drive",
    "in_bridge",
    "iterate",
    "make_sync",
    "run_in_executor",
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
    """A worker greenlet of the bridge; its parent drives the event loop.

    Workers are reused: starting a new greenlet costs several microseconds
    (on Python 3.11+ each one allocates its own frame stack), a switch into a
    waiting one a fraction of that.

    Marked as a greenlet provider for SQLAlchemy: its ``await_()`` (the
    asyncio drivers, ``postgresql+asyncpg://``, ``sqlite+aiosqlite://``)
    switches the awaitable to the parent, which :func:`drive` awaits like any
    other; so the sync ORM and Flask-SQLAlchemy query without blocking.
    """

    # Whether a coroutine is being stepped in this greenlet (see _step_here):
    # code it calls counts as async code for called_from_sync().
    __slots__ = ("stepping",)
    __sqlalchemy_greenlet_provider__ = True

    def __init__(self, run: Callable[..., Any]) -> None:
        super().__init__(run)
        self.stepping = False


class _Done:
    """What a worker switches to its parent with when its call is over."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


#: Whether asyncio counts cancellation requests (``Task.cancelling()``, 3.11+).
COUNTS_CANCELLATIONS = sys.version_info >= (3, 11)
_NO_KWARGS: dict[str, Any] = {}
#: Idle workers kept per thread (greenlets cannot move between threads).
#: Reusing one saves ~55,000 instructions per request (490.2k -> 434.9k,
#: benchmarks/instructions.py, ASGI def view); past 256 idle ones (after a
#: burst of concurrent requests) workers are let go.
_POOL_SIZE = 256
_pools = threading.local()


def _work(call: list[Any]) -> None:
    """The body of a worker greenlet: run calls until told to exit.

    Each call comes as a list ``[fn, args, kwargs]`` that is emptied at once:
    greenlet holds the arguments of its first switch for the greenlet's whole
    life, and an idle worker lives on in the pool (a tuple would keep the
    first call's arguments, say an async generator, alive with it).
    """
    while True:
        fn, args, kwargs = call
        call.clear()
        try:
            done = _Done(fn(*args, **kwargs), None)
        except greenlet.GreenletExit:
            raise
        except BaseException as exc:
            done = _Done(None, exc)
        # Drop references before going idle, then wait for the next call.
        fn = args = kwargs = None
        call = greenlet.getcurrent().parent.switch(done)


def _worker_pool() -> list[_BridgeGreenlet]:
    try:
        return _pools.idle  # type: ignore[no-any-return]
    except AttributeError:
        _pools.idle = []
        return _pools.idle  # type: ignore[no-any-return]


async def drive(
    fn: Callable[..., T],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    on_suspend: Callable[[], bool] | None = None,
    context: contextvars.Context | None = None,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker greenlet and serve its awaits.

    :param on_suspend: called each time the function waits for an awaitable,
        until it returns True (so costs that only matter to code that
        suspends, such as watching for a client disconnect, are paid only by
        such code, and only once).
    :param context: the context variables the function runs in; by default
        the caller's (the same ``Context`` object, not a copy).
    """
    __tracebackhide__ = True  # pytest
    __traceback_hide__ = True  # Werkzeug's debugger
    current = greenlet.getcurrent()
    pool = _worker_pool()
    worker = pool.pop() if pool else _BridgeGreenlet(_work)
    if worker.parent is not current:
        worker.parent = current
    # Share the caller's Context object: ContextVars that Flask sets in the
    # worker (the app and request contexts) must be visible to the coroutines
    # the parent awaits for it, and vice versa. A greenlet otherwise runs in
    # a context of its own.
    worker.gr_context = current.gr_context if context is None else context
    result: Any = worker.switch([fn, args, kwargs or _NO_KWARGS])
    cancelled: BaseException | None = None
    try:
        while result.__class__ is not _Done:
            # The worker switched back with a _Yield (see _step_here): hand
            # its object to the task, then switch back in with the outcome.
            if on_suspend is not None and on_suspend():
                on_suspend = None
            try:
                value = await result
            except asyncio.CancelledError as exc:
                # Throw the cancellation in at the worker's await_() so its
                # finally blocks run (contexts popped, teardown called); it
                # is re-raised below even if the function swallows it.
                cancelled = exc
                result = worker.throw(type(exc), exc, exc.__traceback__)
            except BaseException as exc:
                # With the traceback: greenlet would otherwise drop the
                # awaited coroutine's frames.
                result = worker.throw(type(exc), exc, exc.__traceback__)
            else:
                result = worker.switch(value)
    finally:
        if result.__class__ is _Done and len(pool) < _POOL_SIZE:
            worker.gr_context = None
            pool.append(worker)
    # The idle worker still refers to `result`: empty it, so that neither the
    # value nor an exception (with its frames' locals) outlives the call.
    value, error = result.value, result.error
    result.value = result.error = None
    if error is not None:
        raise error
    if cancelled is not None and _still_cancelling():
        raise cancelled
    return value  # type: ignore[no-any-return]


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
      :func:`run_sync`, and coroutines awaited by them): the awaitable runs in
      this greenlet; each time it waits for the event loop, the greenlet is
      suspended and other requests go on meanwhile. So sync code called from
      an ``async def`` view (``request.get_json()``, an extension) may wait too.
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
        return _step_here(aw, current)
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
    # On the bridge there, so that sync code the awaitable calls may wait too,
    # and in this thread's own Context (not the loop task's copy): context
    # variables the awaitable sets, such as the request context a test
    # client keeps for a `with client:` block, stay visible to the caller.
    contextvars.copy_context()  # makes sure this thread has a Context
    run = drive(await_, (aw,), context=current.gr_context)
    loop = _thread_loop.get(None)
    if loop is not None and loop.is_running():
        # A worker thread of a running loop: run it there, block this thread.
        return asyncio.run_coroutine_threadsafe(run, loop).result()  # type: ignore[no-any-return]
    return _private_loop().run_until_complete(run)  # type: ignore[no-any-return]


def make_sync(func: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    r"""Wrap a coroutine function in a sync function that :func:`await_`\ s it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return await_(func(*args, **kwargs))

    return wrapper


def called_from_sync() -> bool:
    """Whether the caller is sync code that may wait, as Flask's code does.

    True in a bridge greenlet running sync code (a sync view, hook, command,
    or :func:`run_sync`'s function) and where no event loop runs in this
    thread (a sync test, a script); False in a coroutine: one running on the
    loop (an async test), or an ``async def`` view stepped on the bridge, and
    sync code that it calls directly. This is how :func:`dual` functions
    decide what they return.

    .. versionadded:: 0.5
    """
    current = greenlet.getcurrent()
    if isinstance(current, _BridgeGreenlet):
        return not current.stepping
    return asyncio._get_running_loop() is None


def _still_cancelling() -> bool:
    """Whether a cancellation of the current task is still pending.

    ``asyncio.timeout()`` and ``TaskGroup`` cancel the task and then take the
    cancellation back (``uncancel()``) once handled; only a cancellation that
    is still pending must be re-raised. Python 3.10's asyncio has no such
    count, and there a handled cancellation is over: anyio's cancel scopes
    rely on it, also on tasks that have the count (pytest-asyncio's backport).
    """
    if not COUNTS_CANCELLATIONS:
        return False
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > 0


#: Seconds between two cancellations of a task that is still running: its
#: cleanup may wait this long before it is cancelled again.
CANCEL_REPEAT = 0.1


class Cancellation:
    """Cancel a task until it ends, not once: level-triggered cancellation.

    asyncio delivers a cancellation once, and code can swallow it (a bare
    ``except``, or ``asyncio.wait_for`` on Python 3.11 when the inner future
    has just completed) and go on waiting. :meth:`start` cancels the task and
    does so again every :data:`CANCEL_REPEAT` seconds while it still runs,
    so whatever it waits for next raises too; cleanup that waits less than
    that is not interrupted. The task itself calls :meth:`absorb` once it has
    handled the cancellation, to take back the requests made here.

    .. versionadded:: 0.5
    """

    __slots__ = ("_handle", "requested", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        #: The task to cancel.
        self.task = task
        #: How many times :meth:`start` cancelled it.
        self.requested = 0
        self._handle: asyncio.TimerHandle | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self.requested > 0

    def start(self) -> None:
        """Cancel the task now, and again while it runs (until :meth:`stop`)."""
        self._handle = None
        if self.task.done():
            return
        self.task.cancel()
        self.requested += 1
        self._handle = self.task.get_loop().call_later(CANCEL_REPEAT, self.start)

    def stop(self) -> None:
        """Cancel no more."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def absorb(self) -> bool:
        """In the cancelled task: stop, and take back the cancellations made here.

        :return: whether no other cancellation of the task is pending (so it
            may go on, or return, instead of re-raising).
        """
        self.stop()
        if not COUNTS_CANCELLATIONS:
            # Before Python 3.11 a handled cancellation is over.
            return True
        task: Any = self.task  # cancelling() and uncancel() are Python 3.11+
        pending: int = task.cancelling()
        for _ in range(min(self.requested, pending)):
            pending = task.uncancel()
        self.requested = 0
        return pending == 0

    async def wait(self) -> None:
        """From another task: :meth:`start`, then wait until the task is done."""
        self.start()
        try:
            await asyncio.wait({self.task})
        finally:
            if self.task.done():
                self.stop()


def in_bridge() -> bool:
    """Whether the current code runs in a greenlet started by the bridge."""
    return isinstance(greenlet.getcurrent(), _BridgeGreenlet)


class _Yield:
    """Hands one object a coroutine yielded to the event loop's task.

    ``await _Yield(obj)`` in :func:`drive` yields ``obj`` (a future, or None)
    to the task exactly as the coroutine would have, and returns what the task
    sends back; a cancellation arrives as an exception at that point.
    """

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.obj)


def _step_here(aw: Awaitable[T], current: _BridgeGreenlet) -> T:
    """Run ``aw`` in the current (bridge) greenlet, step by step.

    The awaitable's own code runs here, so sync code it calls may itself
    :func:`await_`; only what it yields to the event loop goes to the parent,
    which yields it to the task. An awaitable that completes without waiting
    (most ``async def`` views) costs no switch at all.
    """
    __traceback_hide__ = True  # Werkzeug's debugger
    it: Any = aw if type(aw) is CoroutineType else aw.__await__()
    stepping, current.stepping = current.stepping, True
    try:
        return _step(it, current.parent)  # type: ignore[no-any-return]
    finally:
        current.stepping = stepping


def _step(it: Any, parent: greenlet.greenlet) -> Any:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                yielded = it.send(value)
            else:
                exc, error = error, None
                yielded = it.throw(exc)
        except StopIteration as stop:
            return stop.value
        try:
            # Suspend this greenlet: drive() yields `yielded` to the task.
            value = parent.switch(_Yield(yielded))
        except BaseException as exc:  # a cancellation, or the task closing
            value, error = None, exc


class _PrivateLoop:
    """A thread's private event loop, closed when the thread ends."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_running():
            self.loop.close()


def _private_loop() -> asyncio.AbstractEventLoop:
    holder: _PrivateLoop | None = getattr(_private, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _private.holder = _PrivateLoop()
    return holder.loop


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking sync function in the loop's default thread pool.

    The function sees a copy of the caller's context variables and may call
    :func:`await_`, which then waits on this loop. If the caller is cancelled,
    the cancellation is raised once the function has returned. (Inside an
    aioflask app, :func:`aioflask.run_in_thread` uses the app's thread pool.)

    .. versionadded:: 0.5
    """
    return await run_in_executor(None, fn, *args, **kwargs)


async def run_in_executor(
    executor: Executor | None, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """:func:`run_in_thread` in the given executor (None: the loop's default)."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    ctx.run(_thread_loop.set, loop)
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    future = loop.run_in_executor(executor, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # A thread cannot be stopped: let it finish before the caller's
        # cleanup (Flask's teardown) runs, then pass the cancellation on
        # (repeated cancellations, see Cancellation, are this same one).
        while not future.done():
            try:
                await asyncio.wait({future})
            except asyncio.CancelledError:
                pass
        raise


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
