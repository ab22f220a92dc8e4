"""Awaiting without a task: an awaitable stepped by hand, its outcome to a callback.

A task costs more than most short waits on the loop it serves: creating it,
scheduling its first step, registering it, and cancelling it (an exception
thrown through its frames one loop iteration later). :class:`Stepped` does
what a task does with what an awaitable yields (a future: go on when it is
done; ``None``: go on at the next loop iteration) and nothing else: no
``current_task()`` while it runs, no cancellation counts. Meant for a
server's ``receive()`` kept pending while a request waits (see
:class:`~aioflask.core.body.Receiver`). This module imports nothing from
Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import Any

__all__ = ["Stepped", "awaitable_steps"]

#: ``callback(result, error)``: the outcome of a :class:`Stepped` awaitable.
Callback = Callable[[Any, "BaseException | None"], None]


class Stepped:
    """Go on stepping an awaitable that waits, as a task would; its outcome to a callback.

    The caller takes the first step itself (``it.send(None)``, ``it`` from
    :func:`awaitable_steps`): most awaitables are done at once, and then no
    object is made here. ``Stepped(it, yielded, callback, context)`` takes
    over one that yielded ``yielded`` to the loop: its later steps run as
    loop callbacks in ``context``, and ``callback(result, None)`` or
    ``callback(None, exception)`` is called once it is done.
    :meth:`cancel` does what cancelling a task would: it cancels the future
    waited on and throws :exc:`asyncio.CancelledError` in; the callback is
    not called then.
    """

    __slots__ = ("_callback", "_context", "_future", "_it")

    def __init__(
        self, it: Any, yielded: Any, callback: Callback, context: contextvars.Context
    ) -> None:
        self._it: Any = it
        self._callback = callback
        self._context = context
        self._future: Any = None
        self._wait(yielded)

    def cancel(self) -> None:
        """Stop: cancel the future waited on, throw the cancellation in.

        :raises BaseException: what the awaitable raised instead of ending, or
            the :exc:`RuntimeError` of closing one that waits again.
        """
        it, self._it = self._it, None
        future, self._future = self._future, None
        if it is None:
            return
        if future is not None:
            remove = getattr(future, "remove_done_callback", None)
            if remove is not None:
                remove(self._wakeup)
            future.cancel()
        try:
            it.throw(asyncio.CancelledError())
        except (StopIteration, asyncio.CancelledError):
            return
        # It swallowed the cancellation and waits again: close it.
        it.close()

    def _wakeup(self, future: Any) -> None:
        """The future the awaitable waits on is done (a loop callback)."""
        if future is not self._future:
            return  # cancelled meanwhile
        self._future = None
        try:
            future.result()
        except BaseException as exc:
            self._step(exc)
        else:
            self._step(None)

    def _step(self, error: BaseException | None) -> None:
        it = self._it
        try:
            yielded = it.send(None) if error is None else it.throw(error)
        except StopIteration as stop:
            self._it = None
            self._callback(stop.value, None)
            return
        except BaseException as exc:
            self._it = None
            self._callback(None, exc)
            return
        self._wait(yielded)

    def _wait(self, yielded: Any) -> None:
        """Go on once what the awaitable yielded is done."""
        if getattr(yielded, "_asyncio_future_blocking", None) is not None:
            # A future, as a task takes it: go on when it is done.
            yielded._asyncio_future_blocking = False
            future = yielded
        else:
            # A bare yield (step again soon), or something a task would refuse.
            future = asyncio.get_running_loop().create_future()
            if yielded is None:
                future.set_result(None)
            else:
                future.set_exception(RuntimeError(f"awaitable yielded {yielded!r}, not a future"))
        self._future = future
        future.add_done_callback(self._wakeup, context=self._context)


def awaitable_steps(aw: Awaitable[Any]) -> Any:
    """What to step: the coroutine itself, or its ``__await__()`` iterator.

    An iterator without ``send`` (granian's ``receive()`` and ``send()``
    return such awaitables, written in Rust) is stepped through a generator.
    """
    if type(aw) is CoroutineType:
        return aw
    it = aw.__await__()
    return it if hasattr(it, "send") else _generator(it)


def _generator(it: Any) -> Generator[Any, Any, Any]:
    return (yield from it)
