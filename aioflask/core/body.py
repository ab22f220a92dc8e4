"""The request body of an ASGI HTTP request, read on demand, and disconnects.

:class:`Receiver` owns the server's ``receive`` callable: the body reader
(:class:`InputStream`, the ``wsgi.input`` of the request) takes ``http.request``
messages from it as the application reads, and once the request waits on the
loop a watcher task sees ``http.disconnect`` at once and tells the connection.
This module imports nothing from Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections import deque
from collections.abc import Callable, Iterator
from types import CoroutineType
from typing import Any, cast

from .bridge import await_
from .stepping import Stepped, awaitable_steps
from .timeouts import BodyTimeout, Timeouts, bounded, start
from .types import Receive, ReceiveEvent

__all__ = ["WATCH_BUFFER", "ClientDisconnected", "InputStream", "Receiver"]

#: Request body bytes the disconnect watcher holds for a reader, at most.
WATCH_BUFFER = 256 * 1024

_DISCONNECT: ReceiveEvent = {"type": "http.disconnect"}
# The states of a Receiver's watch.
_IDLE, _RUNNING, _PAUSED, _ENDED = "idle", "running", "paused", "ended"
_DISCARDED: ReceiveEvent = cast(ReceiveEvent, {"type": "aioflask.body.discarded"})


class ClientDisconnected(OSError):
    """The client went away before the request body was complete."""


class Receiver:
    """Owns the ASGI ``receive`` callable of one HTTP request.

    The body reader takes ``http.request`` messages through :meth:`message`,
    the one place the request waits for its body. Once the request suspends on
    the loop (:meth:`watch`), one ``receive()`` call is kept pending so that an
    ``http.disconnect`` is seen at once. Either way a disconnect calls
    ``on_disconnect`` (the connection's). Body messages the watch receives
    wait for the reader in a queue of at most :data:`WATCH_BUFFER` bytes
    (backpressure: past that, the watch waits for the reader, unless the
    response streams).

    The watch is no task: it steps the server's ``receive()`` awaitable itself,
    as a task would (:class:`~aioflask.core.stepping.Stepped`), and cancels it
    when the request ends. A task per waiting request, with its cancellation
    at the end, cost more than the rest of the wait together (57,000
    instructions of a request that waits once, benchmarks/instructions.py).
    """

    # Class-level defaults: most requests never touch most of these, and a
    # request that never suspends pays only for ``_receive``.
    _watch = _IDLE
    _context: contextvars.Context | None = None
    _pending: Stepped | None = None  # the receive() call of the watch
    _body_done = False
    _queue: deque[ReceiveEvent] | None = None
    _queued = 0
    _waiter: asyncio.Future[ReceiveEvent] | None = None
    _direct = False
    _closed = False
    #: An ``http.disconnect`` was received.
    disconnected = False
    #: The response has started streaming (see :meth:`streaming`).
    started = False
    #: Body the app had not read when it streamed was dropped (see the watch).
    discarded = False

    #: The request's progress timeouts (``body``: seconds to wait for a message).
    timeouts: Timeouts | None = None

    def __init__(
        self,
        receive: Receive,
        on_disconnect: Callable[[], None] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._receive = receive
        self._on_disconnect = on_disconnect
        if timeouts is not None:
            self.timeouts = timeouts

    async def message(self) -> ReceiveEvent:
        """The next message for the body reader."""
        if self._queue:
            msg = self._queue.popleft()
            self._queued -= len(msg.get("body", b""))  # type: ignore[arg-type]
            self._wake()
            return msg
        if self.discarded:
            return _DISCARDED
        if self.disconnected:
            return _DISCONNECT
        timeout = self.timeouts.body if self.timeouts is not None else None
        if self._watch is _IDLE or self._watch is _ENDED:
            self._direct = True
            try:
                if timeout is None:
                    msg = await self._receive()
                else:
                    msg, rest = start(self._receive(), timeout, BodyTimeout)
                    if rest is not None:
                        msg = await rest
            finally:
                self._direct = False
            if msg["type"] == "http.disconnect":
                self._disconnected()
            return msg
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await bounded(self._waiter, timeout, BodyTimeout)
        finally:
            self._waiter = None

    def watch(self) -> bool:
        """Watch for a disconnect from now on (called when the request suspends).

        :return: False while a body read is pending (it sees a disconnect
            itself): ask again at the next wait.
        """
        if self._direct:
            return False
        if self._watch is _IDLE and not self.disconnected and not self._closed:
            self._watch = _RUNNING
            # In an empty context, as a task of its own would run: nothing
            # the server's receive() sets leaks into the request's, and the
            # request's are not kept alive by the server's futures.
            self._context = contextvars.Context()
            self._context.run(self._receive_next)
        return True

    def close(self) -> None:
        """The request is over: stop watching."""
        self._closed = True
        # The callback is the connection's bound method, and the connection
        # holds this receiver: a reference cycle, which would leave the whole
        # request (scope, connection, receiver) to the cycle collector.
        self._on_disconnect = None
        self._watch = _ENDED
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.cancel()
            except BaseException as exc:
                self._report(exc)

    def streaming(self) -> None:
        """The response has started: unread body no longer holds the watch back."""
        self.started = True
        self._wake()

    def _disconnected(self) -> None:
        self.disconnected = True
        if not self._closed and self._on_disconnect is not None:
            self._on_disconnect()

    def _wake(self) -> None:
        """The reader took body out of the queue: a paused watch goes on."""
        if self._watch is _PAUSED:
            self._watch = _RUNNING
            asyncio.get_running_loop().call_soon(self._receive_next, context=self._context)

    # -- the watch: one receive() call after the other, stepped by hand -----------------

    def _receive_next(self) -> None:
        """Call ``receive()`` again and again, until it waits."""
        while self._watch is _RUNNING:
            # Buffer a bounded amount of body (once the body is complete,
            # only a disconnect can come next).
            if self._queued >= WATCH_BUFFER and not self._body_done and not self.started:
                self._watch = _PAUSED
                return
            # The first step here: a call that is done at once (the request's
            # body message, as the watch starts) costs no Stepped.
            aw = self._receive()
            it = aw if type(aw) is CoroutineType else awaitable_steps(aw)
            try:
                yielded = it.send(None)
            except StopIteration as stop:
                self._received(stop.value)
                continue
            except BaseException as exc:
                self._failed(exc)
                return
            # It waits: its outcome comes later, through _outcome.
            assert self._context is not None
            self._pending = Stepped(it, yielded, self._outcome, self._context)
            return

    def _outcome(self, msg: Any, error: BaseException | None) -> None:
        """What a ``receive()`` call of the watch that waited returned or raised."""
        self._pending = None
        if error is not None:
            self._failed(error)
        else:
            self._received(msg)
        self._receive_next()

    def _received(self, msg: ReceiveEvent) -> None:
        waiter = self._waiter
        if msg["type"] == "http.disconnect":
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
            self._watch = _ENDED
            self._disconnected()
            return
        self._body_done = not msg.get("more_body", False)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)
        elif self._queued >= WATCH_BUFFER:
            # The response streams while the app leaves this much body
            # unread: keep watching for a disconnect (a stream to nobody
            # must end), dropping the body as Starlette does; reading on
            # past what was kept raises ClientDisconnected.
            self.discarded = True
        else:
            if self._queue is None:
                self._queue = deque()
            self._queue.append(msg)
            self._queued += len(msg.get("body", b""))  # type: ignore[arg-type]

    def _failed(self, exc: BaseException) -> None:
        """``receive()`` raised: the watch ends; a waiting reader gets the error."""
        self._watch = _ENDED
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        elif not self._closed:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        asyncio.get_running_loop().call_exception_handler(
            {"message": "receive() failed while watching for a disconnect", "exception": exc}
        )


def _join(chunks: list[bytes]) -> bytes:
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class InputStream:
    """``wsgi.input``: reads the request body from the server on demand.

    Each message is pulled through :func:`~aioflask.core.bridge.await_` when the
    application reads past what it already has; nothing is read ahead.
    """

    __slots__ = ("_buffer", "_eof", "_receiver")

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._buffer = b""
        self._eof = False

    def _pull(self) -> bytes:
        """The next non-empty body chunk, or ``b""`` at the end of the body."""
        while not self._eof:
            msg = await_(self._receiver.message())
            if msg["type"] != "http.request":
                self._eof = True
                if msg is _DISCARDED:
                    raise ClientDisconnected(
                        "the rest of the request body was dropped: more than"
                        f" {WATCH_BUFFER} bytes were left unread while the response streamed"
                    )
                raise ClientDisconnected("the client disconnected before the body was complete")
            if not msg.get("more_body", False):
                self._eof = True
            body = msg.get("body", b"")
            if body:
                return body
        return b""

    def read(self, size: int | None = -1) -> bytes:
        # A body that arrives in one message is handed on as it is, not copied.
        if size is None or size < 0:
            chunks = [self._buffer] if self._buffer else []
            self._buffer = b""
            while data := self._pull():
                chunks.append(data)
            return _join(chunks)
        if not self._buffer and size:
            # The common read: of a declared length, whose first message
            # holds it all (one message, no list, join or slices).
            self._buffer = self._pull()
            if len(self._buffer) == size:
                data, self._buffer = self._buffer, b""
                return data
        if len(self._buffer) < size:
            chunks = [self._buffer] if self._buffer else []
            have = len(self._buffer)
            while have < size and (data := self._pull()):
                chunks.append(data)
                have += len(data)
            self._buffer = _join(chunks)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes, waiting for at most one message."""
        if size == 0:
            return b""
        if not self._buffer:
            self._buffer = self._pull()
        if size is None or size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read1(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        while b"\n" not in self._buffer and len(self._buffer) < limit:
            data = self._pull()
            if not data:
                break
            self._buffer += data
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        end = min(end, limit)
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        return line

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass
