"""ASGI ``http`` scope <-> WSGI ``environ``/``start_response``, on the bridge.

:func:`serve_http` runs a WSGI application for one ASGI HTTP request in a
bridged greenlet. The request body is pulled from the server as the
application reads ``wsgi.input``; the response is sent as the application
iterates its body. This module imports nothing from Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .bridge import await_, drive
from .typing import HTTPScope, Receive, ReceiveEvent, Send, WSGIApp, WSGIEnviron

__all__ = ["ClientDisconnected", "InputStream", "build_environ", "serve_http"]

#: Block size for files sent through ``wsgi.file_wrapper`` (send_file).
FILE_CHUNK_SIZE = 64 * 1024
#: Request body bytes the disconnect watcher holds for a reader, at most.
WATCH_BUFFER = 256 * 1024

_DISCONNECT: ReceiveEvent = {"type": "http.disconnect"}

# Header name -> environ key; None for names that are dropped (those with an
# underscore, which would be indistinguishable from a dash in the environ).
_HEADER_KEYS: dict[bytes, str | None] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


_UNKNOWN = "?"
# Response header name -> its lowercased bytes.
_RESPONSE_NAMES: dict[str, bytes] = {}


class ClientDisconnected(OSError):
    """The client went away before the request body was complete."""


def _header_key(name: bytes) -> str | None:
    try:
        return _HEADER_KEYS[name]
    except KeyError:
        pass
    text = name.decode("latin-1")
    key = None if "_" in text else "HTTP_" + text.upper().replace("-", "_")
    if len(_HEADER_KEYS) < 4096:
        _HEADER_KEYS[name] = key
    return key


def _latin1(text: str) -> str:
    return text.encode().decode("latin-1")


def build_environ(scope: HTTPScope, body: IO[bytes]) -> WSGIEnviron:
    """Build a PEP 3333 environ for an ASGI HTTP scope.

    Paths are re-decoded as latin-1 from their UTF-8 bytes (PEP 3333's "bytes
    as str"). ``SCRIPT_NAME`` is the scope's ``root_path``; if the server put
    the root path in front of ``path`` too, it is removed from ``PATH_INFO``.
    """
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    server = scope.get("server") or ("localhost", None)
    scheme = scope.get("scheme", "http")
    environ: WSGIEnviron = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path if root_path.isascii() else _latin1(root_path),
        "PATH_INFO": path if path.isascii() else _latin1(path),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or (443 if scheme == "https" else 80)),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": _file_wrapper,
        "asgi.scope": scope,
    }
    raw_path = scope.get("raw_path")
    if raw_path:
        uri = raw_path.decode("latin-1")
        if scope["query_string"]:
            uri += "?" + environ["QUERY_STRING"]
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    if "aioflask.environ" in scope:
        # Environ keys with no place in the scope (from aioflask's test client).
        environ.update(scope["aioflask.environ"])  # type: ignore[typeddict-item]
    keys = _HEADER_KEYS
    for name, value in scope["headers"]:
        key = keys.get(name, _UNKNOWN)
        if key is _UNKNOWN:
            key = _header_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            # Repeated headers are joined (RFC 9110 5.3); cookies with "; ".
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + text
        environ[key] = text
    return environ


def _file_wrapper(file: IO[bytes], buffer_size: int = 8192) -> Iterator[bytes]:
    """``wsgi.file_wrapper``: read in large blocks, close the file at the end."""
    size = max(buffer_size, FILE_CHUNK_SIZE)
    try:
        while data := file.read(size):
            yield data
    finally:
        file.close()


class Receiver:
    """Owns the ASGI ``receive`` callable of one HTTP request.

    The body reader takes ``http.request`` messages through :meth:`message`.
    Once the request suspends on the loop (:meth:`watch`), a watcher task keeps
    one ``receive()`` call pending so that an ``http.disconnect`` is seen at
    once; it then cancels the request's task. Body messages the watcher
    receives wait for the reader in a queue of at most :data:`WATCH_BUFFER`
    bytes (backpressure: past that, the watcher waits for the reader).
    """

    # Class-level defaults: most requests never touch most of these, and a
    # request that never suspends pays only for ``_receive``.
    _task: asyncio.Task[Any] | None = None
    _watcher: asyncio.Task[None] | None = None
    _queue: deque[ReceiveEvent] | None = None
    _queued = 0
    _waiter: asyncio.Future[ReceiveEvent] | None = None
    _direct = False
    _wakeup: asyncio.Future[None] | None = None
    #: An ``http.disconnect`` was received.
    disconnected = False
    #: The watcher cancelled the request's task because of it.
    cancelled = False
    #: The final response message is on its way: no more cancelling.
    complete = False

    def __init__(self, receive: Receive) -> None:
        self._receive = receive

    async def message(self) -> ReceiveEvent:
        """The next message for the body reader."""
        if self._queue:
            msg = self._queue.popleft()
            self._queued -= len(msg.get("body", b""))  # type: ignore[arg-type]
            self._wake()
            return msg
        if self.disconnected:
            return _DISCONNECT
        if self._watcher is None:
            self._direct = True
            try:
                msg = await self._receive()
            finally:
                self._direct = False
                self._wake()
            if msg["type"] == "http.disconnect":
                self.disconnected = True
            return msg
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def watch(self) -> None:
        """Start watching for a disconnect (called when the request suspends)."""
        if self._watcher is None and not self.disconnected:
            self._task = asyncio.current_task()
            self._watcher = asyncio.ensure_future(self._watch())

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    def _wake(self) -> None:
        if self._wakeup is not None:
            if not self._wakeup.done():
                self._wakeup.set_result(None)
            self._wakeup = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        body_done = False
        while True:
            # Never two receive() calls at once; buffer a bounded amount of body
            # (once the body is complete, only a disconnect can come next).
            while self._direct or (self._queued >= WATCH_BUFFER and not body_done):
                self._wakeup = loop.create_future()
                await self._wakeup
            msg = await self._receive()
            waiter = self._waiter
            if msg["type"] == "http.disconnect":
                self.disconnected = True
                if waiter is not None and not waiter.done():
                    waiter.set_result(msg)
                if not self.complete and self._task is not None:
                    self.cancelled = True
                    self._task.cancel()
                return
            body_done = not msg.get("more_body", False)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
            else:
                if self._queue is None:
                    self._queue = deque()
                self._queue.append(msg)
                self._queued += len(msg.get("body", b""))  # type: ignore[arg-type]


class InputStream:
    """``wsgi.input``: reads the request body from the server on demand.

    Each message is pulled through :func:`~aioflask.bridge.await_` when the
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
                raise ClientDisconnected("the client disconnected before the body was complete")
            if not msg.get("more_body", False):
                self._eof = True
            body = msg.get("body", b"")
            if body:
                return body
        return b""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            chunks = [self._buffer]
            self._buffer = b""
            while data := self._pull():
                chunks.append(data)
            return b"".join(chunks)
        if len(self._buffer) < size:
            chunks = [self._buffer]
            have = len(self._buffer)
            while have < size and (data := self._pull()):
                chunks.append(data)
                have += len(data)
            self._buffer = b"".join(chunks)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes, waiting for at most one message."""
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


class Responder:
    """``start_response`` and the body loop, run in the request's greenlet.

    The start message goes out with the first body chunk, so an error raised
    before any body still lets the server answer 500. When the body's length
    is known (Content-Length) the last chunk is returned to :func:`serve_http`
    instead of being sent from the greenlet: a plain response costs no switch.
    """

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []  # replaced per response, never mutated
    length: int | None = None
    started = False

    def __init__(self, send: Send, head: bool) -> None:
        self._send = send
        self._head = head

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Any:
        if exc_info is not None:
            try:
                if self.started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response() was called twice without exc_info")
        self.status = int(status[:3])
        encoded = []
        length = None
        names = _RESPONSE_NAMES
        for name, value in headers:
            key = names.get(name)
            if key is None:
                key = name.lower().encode("latin-1")
                if len(names) < 4096:
                    names[name] = key
            if key == b"content-length":
                length = int(value)
            encoded.append((key, value.encode("latin-1")))
        self.headers = encoded
        self.length = length
        return self.write

    def _start(self) -> Any:
        if self.status is None:
            raise RuntimeError("the WSGI application did not call start_response()")
        self.started = True
        return {
            "type": "http.response.start",
            "status": self.status,
            "headers": self.headers,
            "trailers": False,
        }

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable of PEP 3333."""
        if data and not self._head:
            await_(self._send_body(data, True))

    async def _send_body(self, data: bytes, more: bool) -> None:
        if not self.started:
            await self._send(self._start())
        await self._send({"type": "http.response.body", "body": data, "more_body": more})
        # A server's send() need not wait (uvicorn's returns at once while its
        # buffer has room, or once the client is gone): yield to the loop so a
        # body that never awaits cannot starve other requests, and so that a
        # disconnect is seen and cancels it.
        await asyncio.sleep(0)

    def final(self, data: bytes) -> list[Any]:
        """The messages that end the response, for the parent to send."""
        body = {"type": "http.response.body", "body": data, "more_body": False}
        return [body] if self.started else [self._start(), body]

    def run(self, app: WSGIApp, environ: WSGIEnviron) -> list[Any]:
        iterable = app(environ, self.start_response)
        try:
            if self._head:
                if self.status is None:
                    # start_response may be called on the first iteration.
                    for _ in iterable:
                        break
                return self.final(b"")
            return self._iterate(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def _iterate(self, iterable: Iterable[bytes]) -> list[Any]:
        remaining = self.length
        for chunk in iterable:
            if not chunk:
                continue
            if remaining is not None:
                if len(chunk) >= remaining:
                    return self.final(chunk[:remaining])
                remaining -= len(chunk)
            # Suspend: the parent sends, and the loop serves other requests.
            await_(self._send_body(chunk, True))
        return self.final(b"")


async def serve_http(app: WSGIApp, scope: HTTPScope, receive: Receive, send: Send) -> None:
    """Serve one ASGI HTTP request with a WSGI application, on the bridge.

    A client disconnect seen while the request is suspended cancels it: the
    cancellation is thrown into the application at its pending ``await_``, so
    awaiting views are cancelled and streaming bodies are closed.
    """
    receiver = Receiver(receive)
    responder = Responder(send, scope["method"] == "HEAD")
    environ = build_environ(scope, InputStream(receiver))  # type: ignore[arg-type]
    try:
        messages = await drive(responder.run, (app, environ), None, receiver.watch)
        receiver.complete = True
    except asyncio.CancelledError:
        if not receiver.cancelled or _uncancel() > 0:
            raise
        return  # the client is gone: nobody to answer
    finally:
        receiver.close()
    for message in messages:
        await send(message)


def _uncancel() -> int:
    """Undo one cancel() of the current task; the number still pending."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+
    return uncancel() if uncancel is not None else 0
