"""The greenlet bridge: run_sync, await_, run_in_thread, iterate, drive."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import sys
import threading
import traceback
import weakref

import flask
import greenlet
import pytest

from _helpers import sqlalchemy_await
from aioflask import bridge
from aioflask.core import dual as dual_api
from aioflask.core.bridge import (
    AwaitOutsideBridgeError,
    Cancellation,
    await_,
    drive,
    in_bridge,
    iterate,
    make_sync,
    run_in_thread,
    run_sync,
)

var: contextvars.ContextVar[str] = contextvars.ContextVar("test_bridge_var")


def frame_names(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


async def value_after_switch(value: object) -> object:
    await asyncio.sleep(0)
    return value


async def boom_in_coroutine() -> None:
    await asyncio.sleep(0)
    raise KeyError("from the coroutine")


def busy_bridge_greenlets() -> list[greenlet.greenlet]:
    """Bridge greenlets still in the middle of a call (idle pooled workers excluded)."""
    gc.collect()
    idle = {id(worker) for worker in bridge._worker_pool()}
    return [
        obj
        for obj in gc.get_objects()
        # type(), not isinstance(): a dead weakref.proxy raises on isinstance().
        if issubclass(type(obj), bridge._BridgeGreenlet) and not obj.dead and id(obj) not in idle
    ]


# run_sync: values and exceptions


async def test_run_sync_returns_value_and_passes_arguments():
    def add(a, b, *, c):
        return a + b + c

    assert await run_sync(add, 1, 2, c=3) == 6


async def test_run_sync_passes_keyword_named_fn():
    # run_sync's own parameter is positional-only: a keyword named "fn" reaches
    # the function.
    def echo(*, fn):
        return fn

    assert await run_sync(echo, fn="x") == "x"


async def test_await_returns_the_awaited_value():
    def sync():
        first = await_(value_after_switch(1))
        second = await_(value_after_switch(2))
        return first + second

    assert await run_sync(sync) == 3


async def test_await_accepts_futures_and_tasks():
    loop = asyncio.get_running_loop()

    def sync():
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, "future")
        task = asyncio.ensure_future(value_after_switch("task"))
        return await_(future), await_(task)

    assert await run_sync(sync) == ("future", "task")


async def test_exception_in_sync_code_propagates_with_its_traceback():
    def failing_sync_function():
        await_(asyncio.sleep(0))
        raise ValueError("from the sync code")

    with pytest.raises(ValueError, match="from the sync code") as info:
        await run_sync(failing_sync_function)
    assert "failing_sync_function" in frame_names(info.value)


async def test_exception_before_any_await_propagates():
    def failing_at_once():
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once") as info:
        await run_sync(failing_at_once)
    assert "failing_at_once" in frame_names(info.value)


async def test_exception_in_coroutine_surfaces_in_sync_code():
    caught: list[BaseException] = []

    def sync():
        try:
            await_(boom_in_coroutine())
        except KeyError as exc:
            caught.append(exc)
            return "handled"

    assert await run_sync(sync) == "handled"
    assert caught[0].args == ("from the coroutine",)
    assert "sync" in frame_names(caught[0])


async def test_exception_in_coroutine_keeps_the_coroutine_frame_in_sync_code():
    caught: list[BaseException] = []

    def sync():
        try:
            await_(boom_in_coroutine())
        except KeyError as exc:
            caught.append(exc)

    await run_sync(sync)
    names = frame_names(caught[0])
    assert "sync" in names
    assert "boom_in_coroutine" in names
    # The coroutine's frame comes after (below) the sync frame that awaited it.
    assert names.index("boom_in_coroutine") > names.index("sync")


async def test_exception_in_coroutine_propagates_out_of_run_sync():
    def sync_that_does_not_catch():
        await_(boom_in_coroutine())

    with pytest.raises(KeyError, match="from the coroutine") as info:
        await run_sync(sync_that_does_not_catch)
    assert "sync_that_does_not_catch" in frame_names(info.value)


async def test_exception_in_coroutine_keeps_the_coroutine_frame_out_of_run_sync():
    def sync_that_does_not_catch():
        await_(boom_in_coroutine())

    with pytest.raises(KeyError) as info:
        await run_sync(sync_that_does_not_catch)
    names = frame_names(info.value)
    assert "sync_that_does_not_catch" in names
    assert "boom_in_coroutine" in names


async def test_base_exception_in_sync_code_propagates():
    class Stop(BaseException):
        pass

    def sync():
        raise Stop

    with pytest.raises(Stop):
        await run_sync(sync)


# Context variables


async def test_contextvar_set_in_sync_code_is_seen_by_awaited_coroutine_and_caller():
    async def read_var():
        await asyncio.sleep(0)
        return var.get("unset")

    def sync():
        var.set("from sync")
        return await_(read_var())

    token = var.set("before")
    try:
        assert await run_sync(sync) == "from sync"
        assert var.get() == "from sync"
    finally:
        var.reset(token)


async def test_contextvar_set_in_coroutine_is_seen_back_in_sync_code():
    async def set_var():
        await asyncio.sleep(0)
        var.set("from coroutine")

    def sync():
        await_(set_var())
        return var.get("unset")

    token = var.set("before")
    try:
        assert await run_sync(sync) == "from coroutine"
    finally:
        var.reset(token)


async def test_sync_code_sees_caller_contextvars():
    token = var.set("caller")
    try:
        assert await run_sync(var.get) == "caller"
    finally:
        var.reset(token)


async def test_flask_contexts_set_in_sync_code_are_seen_by_coroutines():
    app = flask.Flask(__name__)

    async def read_request():
        await asyncio.sleep(0)
        return flask.request.path, flask.current_app.name

    def sync():
        with app.test_request_context("/here"):
            return await_(read_request())

    assert await run_sync(sync) == ("/here", app.name)


# Nesting


async def test_nested_bridging():
    def inner_sync(n):
        return await_(value_after_switch(n * 10)) + 1

    async def middle(n):
        # This coroutine is awaited for the outer greenlet, yet bridges again.
        return await run_sync(inner_sync, n)

    def outer_sync():
        assert in_bridge()
        return await_(middle(4)) + await_(middle(5))

    assert await run_sync(outer_sync) == 41 + 51


async def test_nested_bridging_propagates_inner_exceptions():
    def inner():
        await_(asyncio.sleep(0))
        raise LookupError("inner")

    async def middle():
        return await run_sync(inner)

    def outer():
        try:
            await_(middle())
        except LookupError as exc:
            return str(exc)

    assert await run_sync(outer) == "inner"


async def test_concurrent_run_sync_calls_interleave():
    order = []

    def worker(name):
        for i in range(3):
            order.append((name, i))
            await_(asyncio.sleep(0))
        return name

    assert await asyncio.gather(run_sync(worker, "a"), run_sync(worker, "b")) == ["a", "b"]
    # Each await_ lets the other greenlet run: the steps are interleaved.
    assert order[:2] == [("a", 0), ("b", 0)]


# Cancellation


async def test_cancellation_is_raised_in_sync_code_at_await():
    events = []
    waiting = asyncio.Event()

    def sync():
        try:
            waiting.set()
            await_(asyncio.sleep(10))
        except asyncio.CancelledError:
            events.append("cancelled at await_")
            raise
        finally:
            events.append("finally")

    task = asyncio.ensure_future(run_sync(sync))
    await waiting.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["cancelled at await_", "finally"]
    assert task.cancelled()


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10 keeps no count of pending cancellations: a handled one is over",
)
async def test_cancellation_propagates_even_if_sync_code_swallows_it():
    events = []
    waiting = asyncio.Event()

    def sync():
        waiting.set()
        try:
            await_(asyncio.sleep(10))
        except asyncio.CancelledError:
            events.append("swallowed")
        # The sync code may still await (cleanup) after swallowing it.
        await_(asyncio.sleep(0))
        events.append("after")
        return "value"

    task = asyncio.ensure_future(run_sync(sync))
    await waiting.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["swallowed", "after"]


async def test_cancellation_leaves_no_live_greenlet():
    waiting = asyncio.Event()

    def sync():
        waiting.set()
        await_(asyncio.sleep(10))

    before = len(busy_bridge_greenlets())
    task = asyncio.ensure_future(run_sync(sync))
    await waiting.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(busy_bridge_greenlets()) == before


async def test_cancellation_with_wait_for_timeout():
    events = []

    def sync():
        try:
            await_(asyncio.sleep(10))
        finally:
            events.append("finally")

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(run_sync(sync), 0.05)
    assert events == ["finally"]


# await_ outside the bridge


async def test_await_in_coroutine_on_the_loop_raises_and_closes_the_coroutine():
    coro = value_after_switch(1)
    with pytest.raises(AwaitOutsideBridgeError) as info:
        await_(coro)
    message = str(info.value)
    assert "await_()" in message
    assert "coroutine running on the event loop" in message
    assert "Use 'await'" in message
    # Closed: no "coroutine ... was never awaited" warning (filterwarnings=error).
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def test_await_outside_bridge_error_is_a_runtime_error():
    assert issubclass(AwaitOutsideBridgeError, RuntimeError)
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    with pytest.raises(RuntimeError):
        await_(future)
    future.cancel()


async def test_await_in_coroutine_awaited_from_bridge_works():
    # A coroutine awaited by bridged sync code runs in the bridge too, so sync
    # code it calls in turn (an extension, request.get_json()) may wait.
    def sync_helper():
        return await_(value_after_switch(1))

    async def coroutine():
        await asyncio.sleep(0)
        return sync_helper() + await_(value_after_switch(10))

    def sync():
        return await_(coroutine())

    assert await run_sync(sync) == 11


async def test_coroutine_awaited_from_bridge_runs_in_the_callers_task():
    async def task_of_coroutine():
        await asyncio.sleep(0)
        return asyncio.current_task()

    def sync():
        return await_(task_of_coroutine())

    assert await run_sync(sync) is asyncio.current_task()


async def test_cancellation_reaches_a_coroutine_awaited_from_bridge():
    events = []
    waiting = asyncio.Event()

    async def coroutine():
        waiting.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("coroutine cancelled")
            raise

    def sync():
        try:
            await_(coroutine())
        finally:
            events.append("sync finally")

    task = asyncio.ensure_future(run_sync(sync))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["coroutine cancelled", "sync finally"]


TIMEOUT_BUG = (
    "bug: drive() records every CancelledError that reaches the task while a"
    " coroutine runs on the bridge and re-raises it when the call ends, even when"
    " the coroutine handled it: asyncio.timeout() (and TaskGroup, and wait_for"
    " on Python 3.12+) cancels the current task then uncancels it, so a handled"
    " timeout becomes a CancelledError of the whole call"
)
needs_timeout = pytest.mark.skipif(
    not hasattr(asyncio, "timeout"), reason="asyncio.timeout() is Python 3.11+"
)


async def sleep_with_timeout():
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)
    except TimeoutError:
        return "timed out"
    return "not timed out"


@needs_timeout
async def test_asyncio_timeout_in_coroutine_awaited_from_bridge():
    def sync():
        return await_(sleep_with_timeout())

    assert await run_sync(sync) == "timed out"


@needs_timeout
async def test_asyncio_timeout_around_run_sync():
    def sync():
        await_(asyncio.sleep(10))

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await run_sync(sync)


def test_await_without_running_loop_uses_private_loop():
    async def where():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    loop1 = await_(where())
    loop2 = await_(where())
    assert loop1 is loop2
    assert not loop1.is_running()
    assert await_(value_after_switch("again")) == "again"
    assert not in_bridge()


def test_await_without_running_loop_propagates_exceptions():
    with pytest.raises(KeyError, match="from the coroutine"):
        await_(boom_in_coroutine())
    # The private loop is still usable afterwards.
    assert await_(value_after_switch(3)) == 3


def run_in_plain_thread(fn):
    """Run ``fn`` in a new thread (no event loop there); return its result."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(fn()))
    thread.start()
    thread.join()
    return results[0]


async def running_loop():
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


def test_await_in_plain_thread_uses_a_private_loop_per_thread():
    loop = run_in_plain_thread(lambda: await_(running_loop()))
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert loop is not await_(running_loop())
    finally:
        if not loop.is_closed():
            loop.close()


def test_private_loop_of_a_finished_thread_is_closed():
    loop = run_in_plain_thread(lambda: await_(running_loop()))
    try:
        gc.collect()
        assert loop.is_closed()
    finally:
        if not loop.is_closed():
            loop.close()


# run_in_thread


async def test_run_in_thread_runs_in_another_thread():
    loop_thread = threading.get_ident()

    def blocking(x, *, y):
        return threading.get_ident(), x + y

    ident, value = await run_in_thread(blocking, 1, y=2)
    assert value == 3
    assert ident != loop_thread


async def test_run_in_thread_propagates_exceptions():
    def blocking():
        raise ZeroDivisionError("in thread")

    with pytest.raises(ZeroDivisionError, match="in thread"):
        await run_in_thread(blocking)


async def test_await_in_worker_thread_runs_on_the_main_loop():
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    async def where():
        await asyncio.sleep(0)
        return asyncio.get_running_loop(), threading.get_ident()

    def blocking():
        assert not in_bridge()
        return threading.get_ident(), await_(where())

    worker_thread, (coro_loop, coro_thread) = await run_in_thread(blocking)
    assert worker_thread != loop_thread
    assert coro_loop is loop
    assert coro_thread == loop_thread


async def test_await_in_worker_thread_propagates_exceptions():
    def blocking():
        try:
            await_(boom_in_coroutine())
        except KeyError:
            return "caught in thread"

    assert await run_in_thread(blocking) == "caught in thread"


async def test_worker_thread_sees_contextvars_and_flask_contexts():
    app = flask.Flask(__name__)

    async def read_in_coroutine():
        return flask.request.path, var.get("unset")

    def blocking():
        flask.g.seen = True
        return (
            flask.request.path,
            flask.current_app.name,
            var.get("unset"),
            await_(read_in_coroutine()),
        )

    token = var.set("caller")
    try:
        with app.test_request_context("/in-thread"):
            result = await run_in_thread(blocking)
            assert flask.g.seen is True
    finally:
        var.reset(token)
    assert result == ("/in-thread", app.name, "caller", ("/in-thread", "caller"))


async def test_run_in_thread_called_from_sync_code_on_the_bridge():
    loop_thread = threading.get_ident()

    def blocking():
        return threading.get_ident()

    def sync():
        return await_(run_in_thread(blocking))

    assert await run_sync(sync) != loop_thread


# iterate


async def counter(n, log):
    try:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
    finally:
        log.append("finally")


async def test_iterate_async_generator_from_sync_code():
    log: list[str] = []

    def sync():
        return list(iterate(counter(3, log)))

    assert await run_sync(sync) == [0, 1, 2]
    assert log == ["finally"]


async def test_iterate_close_calls_aclose():
    log: list[str] = []

    def sync():
        it = iterate(counter(10, log))
        first = next(it)
        assert log == []
        it.close()
        return first

    assert await run_sync(sync) == 0
    assert log == ["finally"]


async def test_iterate_close_after_exhaustion_and_twice_is_a_noop():
    log: list[str] = []

    def sync():
        it = iterate(counter(1, log))
        items = list(it)
        it.close()
        it.close()
        with pytest.raises(StopIteration):
            next(it)
        return items

    assert await run_sync(sync) == [0]
    assert log == ["finally"]


async def test_iterate_propagates_exceptions_of_the_async_iterator():
    async def failing():
        yield 1
        raise ValueError("in generator")

    def sync():
        it = iterate(failing())
        assert next(it) == 1
        with pytest.raises(ValueError, match="in generator"):
            next(it)
        # Finished after the error: no further items, close is a no-op.
        with pytest.raises(StopIteration):
            next(it)
        it.close()

    await run_sync(sync)


async def test_iterate_async_iterable_without_aclose():
    class Countdown:
        def __init__(self, n):
            self.n = n

        def __aiter__(self):
            return self

        async def __anext__(self):
            if self.n == 0:
                raise StopAsyncIteration
            self.n -= 1
            return self.n

    def sync():
        it = iterate(Countdown(3))
        assert next(it) == 2
        it.close()  # no aclose(): nothing to do
        return list(iterate(Countdown(2)))

    assert await run_sync(sync) == [1, 0]


def test_iterate_without_running_loop():
    log: list[str] = []
    assert list(iterate(counter(2, log))) == [0, 1]
    assert log == ["finally"]


# in_bridge and drive


async def test_in_bridge():
    assert not in_bridge()
    assert await run_sync(in_bridge)
    assert not await run_in_thread(in_bridge)


async def test_drive_calls_on_suspend_until_it_returns_true_and_only_when_suspending():
    calls = []

    def suspending():
        for _ in range(4):
            await_(asyncio.sleep(0))
        return "done"

    def on_suspend():
        calls.append(1)
        return len(calls) == 2  # "not yet" once, then done

    assert await drive(suspending, on_suspend=on_suspend) == "done"
    assert calls == [1, 1]

    calls.clear()
    assert await drive(lambda: "direct", on_suspend=on_suspend) == "direct"
    assert calls == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout() is Python 3.11+")
async def test_run_sync_from_a_coroutine_on_the_bridge_reraises_a_swallowed_cancellation():
    def swallows():
        try:
            await_(asyncio.sleep(1))
        except BaseException:
            return "swallowed"
        return "slept"

    async def in_a_coroutine():
        async with asyncio.timeout(0.01):
            return await run_sync(swallows)

    # The coroutine runs on the bridge (awaited by sync code), as in a view.
    with pytest.raises(TimeoutError):
        await run_sync(lambda: await_(in_a_coroutine()))


async def test_drive_passes_args_and_kwargs():
    def fn(a, b=0):
        return a - b

    assert await drive(fn, (5,), {"b": 2}) == 3
    assert await drive(fn, (5,)) == 5


async def test_bridge_greenlets_finish():
    before = len(busy_bridge_greenlets())

    def sync():
        await_(asyncio.sleep(0))

    await asyncio.gather(*(run_sync(sync) for _ in range(5)))
    assert len(busy_bridge_greenlets()) == before


# Worker greenlets are pooled and reused


async def test_workers_are_reused_without_leaking_context_between_tasks():
    async def in_task(value):
        if value is not None:
            var.set(value)
        return await run_sync(lambda: (var.get("unset"), greenlet.getcurrent()))

    first_value, first_worker = await asyncio.create_task(in_task("first"))
    second_value, second_worker = await asyncio.create_task(in_task(None))
    assert first_value == "first"
    assert second_value == "unset"
    # The same worker ran both calls, each in its caller's context.
    assert first_worker is second_worker


async def test_workers_are_reusable_after_errors_and_cancellation():
    def failing():
        await_(asyncio.sleep(0))
        raise ValueError("x")

    with pytest.raises(ValueError):
        await run_sync(failing)

    def waiting():
        await_(asyncio.sleep(10))

    task = asyncio.ensure_future(run_sync(waiting))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    def fine(x):
        return await_(value_after_switch(x))

    assert await asyncio.gather(*(run_sync(fine, i) for i in range(3))) == [0, 1, 2]


async def test_workers_drop_references_after_a_call():
    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)

    def use(obj):
        await_(asyncio.sleep(0))
        return None

    await run_sync(use, payload)
    del payload
    gc.collect()
    assert ref() is None


async def test_make_sync():
    async def add(a, b=1):
        """Add."""
        await asyncio.sleep(0)
        return a + b

    sync_add = make_sync(add)
    assert sync_add.__name__ == "add"
    assert sync_add.__doc__ == "Add."
    assert await run_sync(sync_add, 1, b=2) == 3
    with pytest.raises(AwaitOutsideBridgeError):
        sync_add(1)


# -- workers keep nothing; level-triggered cancellation ------------------------------


async def test_a_new_worker_keeps_nothing_of_its_first_call():
    class Marker:
        pass

    marker = Marker()
    ref = weakref.ref(marker)
    bridge._worker_pool().clear()  # the call below starts a new worker
    await run_sync(lambda m: None, marker)
    del marker
    assert ref() is None  # freed at once: not held by the idle worker


async def test_cancellation_repeats_until_the_task_ends():
    log = []

    async def stubborn():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("swallowed")  # as asyncio.wait_for may on Python 3.11
        try:
            await asyncio.Event().wait()  # waits on, for nothing
        except asyncio.CancelledError:
            log.append("cancelled again")
            raise

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    cancellation = Cancellation(task)
    await asyncio.wait_for(cancellation.wait(), 5)
    assert task.cancelled()
    assert log == ["swallowed", "cancelled again"]
    assert cancellation.requested == 2


async def test_cancellation_absorbed_by_the_task_itself():
    results = []

    async def request():
        cancellation = Cancellation(asyncio.current_task())
        try:
            cancellation.start()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            results.append(cancellation.absorb())
        # No cancellation is pending any more: waiting works again.
        await asyncio.sleep(0.01)
        results.append("went on")

    await asyncio.wait_for(request(), 5)
    assert results == [True, "went on"]


# -- dual: one API, sync or async, decided by where it is called --------------------------


@dual_api.dual()
async def _doubled(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def test_dual_returns_the_result_where_no_loop_runs() -> None:
    assert bridge.called_from_sync()
    assert _doubled(21) == 42


async def test_dual_returns_an_awaitable_in_a_coroutine() -> None:
    assert not bridge.called_from_sync()
    pending = _doubled(21)
    assert inspect.isawaitable(pending)
    assert await pending == 42
    task = asyncio.create_task(_doubled(1))  # a coroutine, as it was
    assert "_doubled" in repr(task)
    assert await task == 2


async def test_dual_on_the_bridge_follows_the_code_that_calls() -> None:
    def sync_code() -> int:
        assert bridge.called_from_sync()
        return _doubled(1)  # type: ignore[no-any-return]

    async def async_code() -> int:
        assert not bridge.called_from_sync()
        return await _doubled(2)  # type: ignore[no-any-return]

    def sync_calling_async() -> int:
        # A sync view awaiting an async function that awaits a dual one.
        return await_(async_code()) + sync_code()

    assert await run_sync(sync_code) == 2
    assert await run_sync(sync_calling_async) == 6


async def test_a_forgotten_await_is_a_clear_error() -> None:
    pending = _doubled(1)
    with pytest.raises(TypeError, match=r"called in a coroutine.*write 'await _doubled\(\.\.\.\)'"):
        pending.real  # noqa: B018
    with pytest.raises(TypeError, match="write 'await"):
        list(_doubled(1))


class _SyncCM:
    def __init__(self, waits: bool) -> None:
        self.waits = waits
        self.log: list[str] = []

    def __enter__(self) -> str:
        if self.waits:
            await_(asyncio.sleep(0))
        self.log.append("enter")
        return "value"

    def __exit__(self, *exc: object) -> None:
        self.log.append("exit")


def test_dual_context_from_sync_code() -> None:
    cm = _SyncCM(waits=True)
    with dual_api.DualContext(cm, "thing()") as value:
        assert value == "value"
    assert cm.log == ["enter", "exit"]


async def test_dual_context_in_a_coroutine() -> None:
    cm = _SyncCM(waits=True)
    async with dual_api.DualContext(cm, "thing()") as value:
        assert value == "value"
    # `with` in a coroutine works while nothing needs to wait...
    with dual_api.DualContext(_SyncCM(waits=False), "thing()"):
        pass
    # ...and says what to write when something does.
    wrong = dual_api.DualContext(_SyncCM(waits=True), "thing()")
    with pytest.raises(AwaitOutsideBridgeError, match=r"write 'async with thing\(\)' here"):
        wrong.__enter__()
    assert cm.log == ["enter", "exit"]


def test_await_without_a_loop_keeps_context_variables_in_the_callers_context() -> None:
    async def set_it() -> None:
        await asyncio.sleep(0)
        var.set("set by the coroutine")

    token = var.set("before")
    try:
        await_(set_it())
        assert var.get() == "set by the coroutine"
    finally:
        var.reset(token)


# -- SQLAlchemy's greenlet bridge ----------------------------------------------------------


async def test_sqlalchemy_await_waits_on_the_loop_from_a_bridge_greenlet() -> None:
    """SQLAlchemy's asyncio drivers call its await_() from sync code: it works here."""

    started = asyncio.Event()

    async def query() -> int:
        started.set()
        await asyncio.sleep(0.01)
        return 42

    async def other() -> str:
        # Runs while the "query" waits: the loop was not blocked.
        await started.wait()
        return "went on"

    results = await asyncio.gather(run_sync(lambda: sqlalchemy_await(query())), other())
    assert results == [42, "went on"]


async def test_sqlalchemy_await_gets_the_cancellation() -> None:

    seen: list[str] = []

    def sync_query() -> None:
        try:
            sqlalchemy_await(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled at the query")
            raise

    task = asyncio.ensure_future(run_sync(sync_query))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled at the query"]
