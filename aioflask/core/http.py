"""The ASGI ``http`` protocol: one :class:`HTTPConnection` per request.

The connection owns the request's lifecycle (:class:`HTTPState`): it runs a
WSGI application for the request on the bridge, sends the response (the start
message with the first body chunk; :meth:`HTTPConnection.send` is the one
place response messages go out), watches for a client disconnect (through
the body's :class:`~aioflask.core.body.Receiver`), and calls what was
registered to run after the response. A whole file returned through
``wsgi.file_wrapper`` goes to a server that advertises
``http.response.pathsend`` by its path (:mod:`aioflask.core.files`). This
module imports nothing from Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .body import ClientDisconnected, InputStream, Receiver
from .bridge import Cancellation, await_, drive
from .caches import BoundedCache
from .environ import build_environ
from .files import PATHSEND, FileWrapper
from .timeouts import ResponseTimeout, Timeouts, bounded_send
from .types import HTTPScope, Receive, Send, WSGIApp, WSGIEnviron

__all__ = ["ClientDisconnected", "HTTPConnection", "HTTPState", "encode_headers", "serve_http"]

# Response header name -> its lowercased bytes. Saves ~4,000 instructions per
# response of 2 headers (438.9k -> 434.9k, benchmarks/instructions.py, ASGI def view).
_RESPONSE_NAMES: BoundedCache[str, bytes] = BoundedCache(4096)


def encode_headers(
    headers: Iterable[tuple[str, str]],
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """WSGI response headers in ASGI's terms, and the ``Content-Length`` value
    (``None`` when absent).

    :raises ValueError: a ``Content-Length`` that is not a number.
    :raises UnicodeEncodeError: a name or value that is not latin-1.
    """
    encoded = []
    length = None
    names = _RESPONSE_NAMES
    for name, value in headers:
        key = names.get(name)
        if key is None:
            key = names.put(name, name.lower().encode("latin-1"))
        if key == b"content-length":
            length = int(value)
        encoded.append((key, value.encode("latin-1")))
    return encoded, length


class HTTPState(enum.Enum):
    """Where an :class:`HTTPConnection` is in its lifecycle."""

    #: The application runs; nothing was sent yet (an error can still be a 500).
    REQUEST = "request"
    #: The response has started (its head is being sent or sent) and its body streams.
    STREAMING = "streaming"
    #: The response is complete.
    DONE = "done"
    #: The client went away first. Every later send or body read raises
    #: :exc:`ClientDisconnected`, and the request is cancelled until it ends
    #: (:class:`~aioflask.core.bridge.Cancellation`): no code of it outlives
    #: its client, even code that swallows one cancellation.
    DISCONNECTED = "disconnected"


# The states, as module globals for the per-request paths.
_REQUEST, _STREAMING = HTTPState.REQUEST, HTTPState.STREAMING
_DONE, _DISCONNECTED = HTTPState.DONE, HTTPState.DISCONNECTED


class HTTPConnection:
    """One ASGI HTTP request, served by a WSGI application on the bridge.

    ``await HTTPConnection(app, scope, receive, send)()`` serves it. The
    request body is pulled from the server as the application reads
    ``wsgi.input``; the response is sent as the application iterates its
    body. A client disconnect seen while the request waits cancels it; a
    streaming body is closed. The environ holds the connection under
    :attr:`environ_key`. With ``timeouts`` (:attr:`timeouts`, which the
    application may change while it runs), a body that stalls raises
    :exc:`~aioflask.core.timeouts.BodyTimeout` in the reader, and a streamed
    response the server takes no more of raises
    :exc:`~aioflask.core.timeouts.ResponseTimeout` out of the call (the
    server then closes the connection).

    .. versionadded:: 0.5
    """

    #: The environ key holding the connection.
    environ_key = "aioflask.connection"

    state = HTTPState.REQUEST
    _status: int | None = None
    _headers: list[tuple[bytes, bytes]] = []  # replaced per response, never mutated
    _length: int | None = None
    _after: list[Callable[[], object]] | None = None
    _ended = False
    _cancellation: Cancellation | None = None
    _task: asyncio.Task[Any] | None = None  # set when the request first waits
    #: The request's progress timeouts (shared with :attr:`receiver`); None: none.
    timeouts: Timeouts | None = None

    def __init__(
        self,
        app: WSGIApp,
        scope: HTTPScope,
        receive: Receive,
        send: Send,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.app = app
        self.scope = scope
        self._send = send
        self._head = scope["method"] == "HEAD"
        if timeouts is not None:
            self.timeouts = timeouts
        #: The request body's reader and the disconnect watcher.
        self.receiver = Receiver(receive, self._client_left, timeouts)

    async def __call__(self) -> None:
        environ = build_environ(self.scope, InputStream(self.receiver))  # type: ignore[arg-type]
        environ[self.environ_key] = self
        try:
            try:
                messages = await drive(self._run, (environ,), None, self._suspended)
            except asyncio.CancelledError:
                if self._cancellation is None or not self._cancellation.absorb():
                    raise
                return  # the client is gone: nobody to answer
            except ClientDisconnected:
                if self.state is not _DISCONNECTED:
                    raise
                return
            finally:
                self.receiver.close()
                if self._cancellation is not None:
                    self._cancellation.stop()
            for message in messages:
                await self.send(message)
            self.state = _DONE
        except ClientDisconnected:
            if self.state is not _DISCONNECTED:
                raise
        finally:
            self._task = None
            self._ended = True
            if self._after is not None:
                self._run_after()

    def call_after_response(self, callback: Callable[[], object]) -> bool:
        """Call ``callback()`` once the request is over (its response sent, or its client gone).

        :return: False if it is over already: then the caller calls it.
        """
        if self._ended:
            return False
        if self._after is None:
            self._after = []
        self._after.append(callback)
        return True

    def _run_after(self) -> None:
        after, self._after = self._after, None
        for callback in after or ():
            callback()

    def send(self, message: Any) -> Awaitable[None]:
        """Send one response message to the server (await it): the one place they go out.

        Once the response streams, each send is bounded by
        ``timeouts.response`` (it must make progress).

        :raises ClientDisconnected: the client is gone (every time).
        :raises ResponseTimeout: the server took nothing for ``timeouts.response`` seconds.
        """
        state = self.state
        if state is _DISCONNECTED:
            raise ClientDisconnected("the client disconnected: the response cannot be sent")
        timeouts = self.timeouts
        if timeouts is None or state is _REQUEST:
            # A response sent in one piece is handed to the server, whose
            # buffer only a previous response on the same connection can have
            # filled (pipelining): unbounded, it costs no timeout step (2% of
            # a JSON ping, benchmarks/instructions.py). One that streamed may
            # find the buffer full (the client reads slowly): bounded.
            return self._send(message)
        return bounded_send(self._send(message), timeouts.response, ResponseTimeout)

    def _client_left(self) -> None:
        """The receiver saw ``http.disconnect``."""
        if self.state is _DONE:
            return
        self.state = _DISCONNECTED
        if self._task is not None and asyncio.current_task() is not self._task:
            # Seen by the watcher while the request waits: cancel it. (Seen by
            # a body read in the request itself, or before the request ever
            # waited: at its next wait, in _suspended.)
            self._cancel()

    def _cancel(self) -> None:
        if self._cancellation is None and self._task is not None:
            self._cancellation = Cancellation(self._task)
            self._cancellation.start()

    def _suspended(self) -> bool:
        """The request waits on the loop (``drive``'s hook, until it returns True)."""
        if self._task is None:
            self._task = asyncio.current_task()
        # False while a body read is pending: it sees a disconnect itself.
        if self.state is not _DISCONNECTED and not self.receiver.watch():
            return False
        if self.state is _DISCONNECTED:
            # A body read saw the client go, or the watch did as it started
            # (in this task), and the request waits on anyway.
            self._cancel()
        return True

    # -- the WSGI side, run in the request's greenlet --------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Any:
        if exc_info is not None:
            try:
                if self.state is not _REQUEST:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
            self._status = None  # nothing was sent: the error's response replaces it
        self.start(int(status[:3]), *encode_headers(headers))
        return self.write

    def start(self, status: int, headers: list[tuple[bytes, bytes]], length: int | None) -> None:
        """``start_response`` for a response already in ASGI's terms.

        ``headers`` as :func:`encode_headers` returns them (with ``length``,
        the value of their ``Content-Length``). For a WSGI application that
        knows it is served by this connection (aioflask's ``Response``).
        """
        if self._status is not None:
            raise RuntimeError("start_response() was called twice without exc_info")
        self._status = status
        self._headers = headers
        self._length = length

    def _start(self) -> Any:
        if self._status is None:
            raise RuntimeError("the WSGI application did not call start_response()")
        return {
            "type": "http.response.start",
            "status": self._status,
            "headers": self._headers,
            "trailers": False,
        }

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable of PEP 3333."""
        if data and not self._head:
            await_(self._send_body(data, True))

    async def _send_body(self, data: bytes, more: bool) -> None:
        if self.state is _REQUEST:
            # Streaming from its head on: every send is bounded (see send()).
            self.state = _STREAMING
            await self.send(self._start())
            self.receiver.streaming()
        await self.send({"type": "http.response.body", "body": data, "more_body": more})
        # A server's send() need not wait (uvicorn's returns at once while its
        # buffer has room, or once the client is gone): yield to the loop so a
        # body that never awaits cannot starve other requests, and so that a
        # disconnect is seen and cancels it.
        await asyncio.sleep(0)

    def _final(self, data: bytes) -> list[Any]:
        """The messages that end the response, for the parent to send."""
        body = {"type": "http.response.body", "body": data, "more_body": False}
        return [body] if self.state is _STREAMING else [self._start(), body]

    def _run(self, environ: WSGIEnviron) -> list[Any]:
        iterable = self.app(environ, self.start_response)
        try:
            if self._head:
                if self._status is None:
                    # start_response may be called on the first iteration.
                    for _ in iterable:
                        break
                return self._final(b"")
            if type(iterable) is FileWrapper and self.state is _REQUEST:
                path = iterable.path(self._length)
                if path is not None and PATHSEND in (self.scope.get("extensions") or ()):
                    # The server opens the path and sends the file itself
                    # (once the file here is closed: it reads the path, not
                    # this file). Anything else (a range, a file-like object,
                    # a body wrapped by middleware) is not this wrapper, or
                    # not a whole file: it streams.
                    return [self._start(), {"type": PATHSEND, "path": path}]
            return self._iterate(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def _iterate(self, iterable: Iterable[bytes]) -> list[Any]:
        # When the body's length is known (Content-Length) the last chunk is
        # returned to the parent instead of being sent from the greenlet: a
        # plain response costs no switch.
        remaining = self._length
        for chunk in iterable:
            if not chunk:
                continue
            if remaining is not None:
                if len(chunk) >= remaining:
                    return self._final(chunk[:remaining])
                remaining -= len(chunk)
            # Suspend: the parent sends, and the loop serves other requests.
            await_(self._send_body(chunk, True))
        return self._final(b"")


async def serve_http(
    app: WSGIApp,
    scope: HTTPScope,
    receive: Receive,
    send: Send,
    timeouts: Timeouts | None = None,
) -> None:
    """Serve one ASGI HTTP request with a WSGI application (an :class:`HTTPConnection`)."""
    await HTTPConnection(app, scope, receive, send, timeouts)()
