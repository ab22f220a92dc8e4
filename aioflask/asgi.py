"""ASGI ``http`` scope <-> WSGI ``environ``/``start_response``, on the bridge.

:func:`serve_http` runs a WSGI application for one ASGI HTTP request in a
bridged greenlet. The request body is pulled from the server as the
application reads ``wsgi.input`` (see :mod:`aioflask.body`); the response is
sent as the application iterates its body. This module imports nothing from
Flask or Werkzeug.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import IO, Any

from .body import ClientDisconnected, InputStream, Receiver
from .bridge import COUNTS_CANCELLATIONS, await_, drive
from .timeouts import ENVIRON_KEY as TIMEOUTS_KEY
from .timeouts import ResponseTimeout, Timeouts, bounded_send
from .typing import HTTPScope, Receive, Send, WSGIApp, WSGIEnviron

__all__ = [
    "ClientDisconnected",
    "InputStream",
    "Receiver",
    "Responder",
    "build_environ",
    "serve_http",
]

#: Block size for files sent through ``wsgi.file_wrapper`` (send_file).
FILE_CHUNK_SIZE = 64 * 1024


# Header name -> environ key; None for names that are dropped (those with an
# underscore, which would be indistinguishable from a dash in the environ).
_HEADER_KEYS: dict[bytes, str | None] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


_UNKNOWN = "?"
# Response header name -> its lowercased bytes.
_RESPONSE_NAMES: dict[str, bytes] = {}


def _header_key(name: bytes) -> str | None:
    """The environ key of a header name not in the cache yet (and cache it)."""
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

    def __init__(
        self,
        send: Send,
        head: bool,
        on_stream: Callable[[], None] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._send = send
        self._head = head
        self._on_stream = on_stream
        self.timeouts = timeouts

    def send(self, message: Any) -> Awaitable[None]:
        """Send a message, within the response timeout (each send must progress)."""
        timeout = self.timeouts.response if self.timeouts is not None else None
        return bounded_send(self._send(message), timeout, ResponseTimeout)

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
            await self.send(self._start())
            if self._on_stream is not None:
                self._on_stream()
        await self.send({"type": "http.response.body", "body": data, "more_body": more})
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


async def serve_http(
    app: WSGIApp,
    scope: HTTPScope,
    receive: Receive,
    send: Send,
    timeouts: Timeouts | None = None,
) -> None:
    """Serve one ASGI HTTP request with a WSGI application, on the bridge.

    A client disconnect seen while the request is suspended cancels it: the
    cancellation is thrown into the application at its pending ``await_``, so
    awaiting views are cancelled and streaming bodies are closed. With
    ``timeouts`` (in the environ for the app to change), a body that stalls
    raises :exc:`~aioflask.timeouts.BodyTimeout` in the reader, and a response
    the server takes no more of raises :exc:`~aioflask.timeouts.ResponseTimeout`
    here (the server then closes the connection).
    """
    receiver = Receiver(receive, timeouts)
    responder = Responder(send, scope["method"] == "HEAD", receiver.streaming, timeouts)
    environ = build_environ(scope, InputStream(receiver))  # type: ignore[arg-type]
    if timeouts is not None:
        environ[TIMEOUTS_KEY] = timeouts
    try:
        messages = await drive(responder.run, (app, environ), None, receiver.watch)
    except asyncio.CancelledError:
        if not receiver.cancelled or _uncancel() > 0:
            raise
        return  # the client is gone: nobody to answer
    finally:
        receiver.close()
    # A response that streamed may find the server's buffer full (the client
    # reads slowly): its last send is bounded too. One sent in one piece is
    # handed to the server, whose buffer only a previous response on the same
    # connection can have filled (pipelining); leaving it unbounded saves each
    # plain response two timeout steps (2% of a JSON ping, instructions.py).
    send_final = responder.send if receiver.started else send
    for message in messages:
        await send_final(message)


def _uncancel() -> int:
    """Undo one cancel() of the current task; the number still pending.

    Before Python 3.11 a handled cancellation is over (see the bridge's
    ``_still_cancelling``), whatever the task counts.
    """
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+ (and backports)
    pending = uncancel() if uncancel is not None else 0
    return pending if COUNTS_CANCELLATIONS else 0
