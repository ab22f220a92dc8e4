"""HTTP in the test client: a WSGI environ as an ASGI scope, one exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES

from ..core.bridge import iterate
from .body import FileSource, ManualSource, RequestStream

__all__ = ["EXTENSION_MESSAGES", "StreamedResponse", "environ_to_scope"]

#: The key of a test request's environ where the client puts the list of
#: extension messages the app sent (``response.extension_messages``).
EXTENSION_MESSAGES = "aioflask.testing.extension_messages"

# Keys of the environ that travel in the ASGI scope itself; the others (the
# test client's own, such as werkzeug.debug.preserve_context, and the
# wsgi.errors stream that Flask logs to) are passed on through the scope's
# "aioflask.environ" entry.
_SCOPE_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "REQUEST_URI",
        "RAW_URI",
    }
)


def environ_to_scope(
    environ: dict[str, Any], state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build an ASGI HTTP scope from a WSGI environ (what a server would send).

    ``state`` is the lifespan state; the scope gets a shallow copy of it.
    """
    path = environ.get("PATH_INFO", "").encode("latin-1")
    root = environ.get("SCRIPT_NAME", "").encode("latin-1")
    # A streamed body goes chunked, as an HTTP client sends a body of unknown length.
    # (Werkzeug measures a RequestStream as empty; a test sending the body
    # itself may declare a length with content_length=.)
    body = environ.get("wsgi.input")
    chunked = isinstance(body, RequestStream) or (
        isinstance(body, ManualSource) and not environ.get("CONTENT_LENGTH")
    )
    headers = [(b"transfer-encoding", b"chunked")] if chunked else []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key == "CONTENT_TYPE" or (key == "CONTENT_LENGTH" and not chunked):
            name = key.replace("_", "-").lower()
        else:
            continue
        if value != "" and not (chunked and name == "transfer-encoding"):
            headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
    extra = {
        k: v
        for k, v in environ.items()
        if k not in _SCOPE_KEYS
        and k != EXTENSION_MESSAGES
        and (k == "wsgi.errors" or not k.startswith(("HTTP_", "wsgi.")))
    }
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": environ.get("SERVER_PROTOCOL", "HTTP/1.1").partition("/")[2] or "1.1",
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": (root + path).decode("utf-8", "surrogateescape"),
        "raw_path": quote(root + path, safe="/%!$&'()*+,;=:@").encode("ascii"),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": root.decode("utf-8", "surrogateescape"),
        "headers": headers,
        "client": (
            environ.get("REMOTE_ADDR", "127.0.0.1"),
            int(environ.get("REMOTE_PORT", 0) or 0),
        ),
        "server": (environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT", 80))),
        "extensions": {},
        "state": dict(state or {}),
        "aioflask.environ": extra,
    }


def _misuse(kind: str, when: str) -> RuntimeError:
    return RuntimeError(f"Unexpected ASGI message {kind!r} {when}.")


class _Exchange:
    """The client side of one ASGI HTTP exchange: body out, response in.

    ``body`` is the request's ``wsgi.input``: a file (read in chunks), a
    :class:`~aioflask.testing.body.RequestStream` or a
    :class:`~aioflask.testing.body.ManualSource`. Response messages other
    than ``http.response.start`` and ``http.response.body`` are recorded in
    :attr:`extension_messages`, in order, for the test to inspect.
    """

    def __init__(self, body: Any) -> None:
        self._source: Any = None
        #: A ``data=`` iterable the app may have left unread: closed at the end.
        self.stream = body if isinstance(body, RequestStream) else None
        if isinstance(body, (RequestStream, ManualSource)):
            self._source = body
        elif body is not None:
            self._source = FileSource(body)
        self._sent_all = body is None
        self._finished = asyncio.Event()
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        #: Every body chunk the app sent, in order.
        self.body_chunks: list[bytes] = []
        #: The body chunks not yet read by a streaming reader; ``None`` ends them.
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.started = asyncio.Event()
        self.complete = False
        self.disconnected = False
        #: The messages the client does not handle, as the app sent them.
        self.extension_messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if not self._sent_all:
            if isinstance(self._source, FileSource):
                message = await self._source.next()
            else:
                # A stream may wait (for the test, or its own iterable): the
                # client leaving ends that wait.
                message = await _first_or_finished(self._source.next(), self._finished)
            self._sent_all = message["type"] != "http.request" or not message["more_body"]
            return message
        # The body is sent: the next event is the client going away, which
        # happens once the response is over (or the client stops reading).
        await self._finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind not in ("http.response.start", "http.response.body"):
            self.extension_messages.append(message)
        elif self.complete:
            raise _misuse(kind, "after the response was complete")
        elif self.disconnected:
            pass  # as a server does: the client is gone
        elif kind == "http.response.start":
            if self.status is not None:
                raise _misuse(kind, "after the response had started")
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            self.started.set()
        else:
            if self.status is None:
                raise _misuse(kind, "before 'http.response.start'")
            if body := message.get("body"):
                self.body_chunks.append(body)
                self.chunks.put_nowait(body)
            if not message.get("more_body", False):
                self.complete = True
                self.chunks.put_nowait(None)
                self._finished.set()

    def disconnect(self) -> None:
        """The client goes away: the app's next (or pending) ``receive()`` says so."""
        self.disconnected = not self.complete
        if isinstance(self._source, ManualSource) and not self._source.done:
            self._source.put({"type": "http.disconnect"})
        self._finished.set()

    @asynccontextmanager
    async def running(
        self, app: Any, environ: dict[str, Any], state: dict[str, Any] | None = None
    ) -> AsyncIterator[asyncio.Task[None]]:
        """Run ``app`` on this exchange in a task; on exit, disconnect and wait for it.

        ``state`` is the lifespan state, copied into the scope as servers do.
        """
        scope = environ_to_scope(environ, state)
        task = asyncio.ensure_future(app(scope, self.receive, self.send))
        try:
            yield task
        finally:
            # Leaving before the app finished closes the connection.
            self.disconnect()
            try:
                await task
            finally:
                if self.stream is not None:
                    await self.stream.aclose()

    async def next_chunk(self, task: asyncio.Future[None]) -> bytes | None:
        """The next body chunk, ``None`` at the end; raises the app's error if it fails."""
        getter = asyncio.ensure_future(self.chunks.get())
        waiting: set[asyncio.Future[Any]] = {getter, task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        task.result()  # the app failed: raise its error
        if not self.started.is_set():
            raise RuntimeError("The app returned without sending a response.")
        return None

    def status_line(self) -> str:
        assert self.status is not None
        return f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'UNKNOWN')}"

    def header_list(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]

    def body(self) -> list[bytes]:
        return self.body_chunks


async def _first_or_finished(aw: Any, finished: asyncio.Event) -> dict[str, Any]:
    """Await ``aw``, unless ``finished`` is set first (then: a disconnect)."""
    future = asyncio.ensure_future(aw)
    if not future.done():
        waiter = asyncio.ensure_future(finished.wait())
        await asyncio.wait({future, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not future.done():
            future.cancel()
            return {"type": "http.disconnect"}
    return future.result()  # type: ignore[no-any-return]


class StreamedResponse:
    """A response read as it arrives, from :meth:`FlaskClient.stream`.

    .. versionadded:: 0.5
    """

    def __init__(self, exchange: _Exchange, task: asyncio.Future[None]) -> None:
        self._exchange = exchange
        self._task = task
        self.status_code: int = exchange.status or 0
        self.status = exchange.status_line()
        self.headers = Headers(exchange.header_list())

    @property
    def extension_messages(self) -> list[dict[str, Any]]:
        """The ASGI messages the app sent that the client does not handle, in order.

        Anything but ``http.response.start`` and ``http.response.body``: an
        ``http.response.trailers``, ``http.response.push`` or
        ``http.response.pathsend`` message (none is advertised in the
        scope's ``extensions``), or a type of the app's own.
        """
        return self._exchange.extension_messages

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield body chunks as the app sends them."""
        while (chunk := await self._exchange.next_chunk(self._task)) is not None:
            yield chunk

    async def aread(self) -> bytes:
        """The rest of the body."""
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    def iter_bytes(self) -> Iterator[bytes]:
        """Body chunks as the app sends them, in a sync test."""
        return iterate(self.aiter_bytes())

    def read(self) -> bytes:
        """The rest of the body, in a sync test."""
        return b"".join(self.iter_bytes())
