"""Progress timeouts: a slow client cannot hold a request forever.

``BODY_TIMEOUT`` bounds each wait for the next piece of the request body,
``RESPONSE_TIMEOUT`` each wait for the server to take the next piece of the
response (a client that does not read fills the socket buffers, and the
server's ``send()`` then waits). Both measure progress, not the total: an
upload that keeps moving is never cut off, a download that keeps being read
neither; a wait longer than the limit raises :exc:`BodyTimeout` (the request
then answers ``408``) or :exc:`ResponseTimeout` (the response is abandoned, its
body closed, and the server closes the connection).

The hooks: the body reader (:meth:`aioflask.core.body.Receiver.message`)
waits through :func:`start` and :func:`bounded`, the response sender
(:meth:`aioflask.core.http.HTTPConnection.send`) through :func:`bounded_send`.
This module imports nothing from Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

from .stepping import awaitable_steps

__all__ = [
    "BodyTimeout",
    "ProgressTimeout",
    "ResponseTimeout",
    "Timeouts",
    "bounded",
    "bounded_send",
    "start",
]

T = TypeVar("T")


class ProgressTimeout(TimeoutError):
    """A wait made no progress for :attr:`seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no progress for {seconds} s")
        #: The limit that was reached.
        self.seconds = seconds


class BodyTimeout(ProgressTimeout):
    """No part of the request body arrived for ``BODY_TIMEOUT`` seconds.

    .. versionadded:: 0.5
    """


class ResponseTimeout(ProgressTimeout):
    """The server took no part of the response for ``RESPONSE_TIMEOUT`` seconds.

    .. versionadded:: 0.5
    """


class Timeouts:
    """The progress timeouts of one request, in seconds (None: no limit).

    Created per request from the app's config; ``request.body_timeout`` and
    ``response.timeout`` change them for one request.
    """

    __slots__ = ("body", "response")

    def __init__(self, body: float | None, response: float | None) -> None:
        self.body = body
        self.response = response


class _Deadline:
    """Cancels the waiting task when a wait takes too long (a timer callback)."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def __call__(self) -> None:
        self.expired = True
        self.task.cancel()


def bounded(aw: Awaitable[T], seconds: float | None, error: type[ProgressTimeout]) -> Awaitable[T]:
    """Await ``aw``; if it waits more than ``seconds``, cancel it and raise ``error``.

    The timer is armed only once ``aw`` suspends: a timer costs more than
    most waits (see :func:`start` for the cheapest path). A cancellation
    from elsewhere (a client disconnect) passes through as it is. Like
    ``asyncio.timeout()`` (which Python 3.10 lacks): the timer cancels the
    task, and the cancellation it caused is taken back here.
    """
    return aw if seconds is None else _Bounded(awaitable_steps(aw), seconds, error, _START)


def start(aw: Awaitable[T], seconds: float, error: type[ProgressTimeout]) -> tuple[Any, Any]:
    """Run the first step of ``aw`` at once, for the hot paths.

    Returns ``(result, None)`` when ``aw`` completed without waiting (a
    server's ``send()`` nearly always does, so does ``receive()`` when the
    body is there): no generator and no timer. Otherwise ``(None, rest)``,
    where ``rest`` is to be awaited: :func:`bounded` from that suspension on.
    Stepping every send through :func:`bounded` cost a JSON ping 2.8% more
    instructions, a timer armed for every send 12% (``benchmarks/instructions.py``);
    this costs one ``StopIteration``.
    """
    it = awaitable_steps(aw)
    try:
        yielded = it.send(None)
    except StopIteration as stop:
        return stop.value, None
    return None, _Bounded(it, seconds, error, yielded)


def bounded_send(
    aw: Awaitable[None], seconds: float | None, error: type[ProgressTimeout]
) -> Awaitable[None]:
    """:func:`bounded` for an awaitable without a result (a send), through :func:`start`."""
    if seconds is None:
        return aw
    _, rest = start(aw, seconds, error)
    return _SENT if rest is None else rest


class _Sent:
    """An awaitable that returns None at once, without a generator."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        return iter(())  # type: ignore[return-value]


_SENT = _Sent()
_START = object()  # not stepped yet


class _Bounded:
    """Steps an awaitable (from its first suspension on) under a timer."""

    __slots__ = ("error", "it", "seconds", "yielded")

    def __init__(self, it: Any, seconds: float, error: type[ProgressTimeout], yielded: Any) -> None:
        self.it = it
        self.seconds = seconds
        self.error = error
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        it, yielded = self.it, self.yielded
        self.it = self.yielded = None
        if yielded is _START:
            try:
                yielded = it.send(None)
            except StopIteration as stop:
                return stop.value  # done without waiting: no timer
        task = asyncio.current_task()
        deadline = _Deadline(task) if task is not None else None
        timer = asyncio.get_running_loop().call_later(self.seconds, deadline) if deadline else None
        try:
            # What `yield from it` does, from its first suspension on.
            while True:
                try:
                    value = yield yielded
                except GeneratorExit:
                    it.close()
                    raise
                except BaseException as exc:
                    try:
                        yielded = it.throw(exc)
                    except StopIteration as stop:
                        return stop.value
                else:
                    try:
                        yielded = it.send(value)
                    except StopIteration as stop:
                        return stop.value
        except asyncio.CancelledError:
            if deadline is None or not deadline.expired or _uncancel(deadline.task) > 0:
                raise
            raise self.error(self.seconds) from None
        finally:
            if timer is not None:
                timer.cancel()


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Take back the timer's cancellation; the number still pending (3.11+)."""
    uncancel = getattr(task, "uncancel", None)
    return uncancel() if uncancel is not None else 0
