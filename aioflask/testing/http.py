"""HTTP in the test client: a WSGI environ as an ASGI scope, one exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES

from ..core.bridge import iterate

if TYPE_CHECKING:
    pass


__all__ = ["BODY_CHUNK_SIZE", "StreamedResponse", "environ_to_scope"]

#: Size of the http.request messages a request body is sent in.
BODY_CHUNK_SIZE = 64 * 1024

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
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if value != "":
            headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
    extra = {
        k: v
        for k, v in environ.items()
        if k not in _SCOPE_KEYS and (k == "wsgi.errors" or not k.startswith(("HTTP_", "wsgi.")))
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


class _Exchange:
    """The client side of one ASGI HTTP exchange: body out, response in."""

    def __init__(self, body: IO[bytes] | None) -> None:
        self._body = body
        self._sent_all = body is None
        self._finished = asyncio.Event()
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.started = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self._sent_all:
            assert self._body is not None
            data = self._body.read(BODY_CHUNK_SIZE)
            more = len(data) == BODY_CHUNK_SIZE
            self._sent_all = not more
            return {"type": "http.request", "body": data, "more_body": more}
        # The body is sent: the next event is the client going away, which
        # happens once the response is over (or the client stops reading).
        await self._finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            self.started.set()
        elif message["type"] == "http.response.body":
            if message.get("body"):
                self.chunks.put_nowait(message["body"])
            if not message.get("more_body", False):
                self.chunks.put_nowait(None)
                self._finished.set()

    def disconnect(self) -> None:
        self._finished.set()

    def status_line(self) -> str:
        assert self.status is not None
        return f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'UNKNOWN')}"

    def header_list(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]

    def body(self) -> list[bytes]:
        out = []
        while not self.chunks.empty():
            chunk = self.chunks.get_nowait()
            if chunk is not None:
                out.append(chunk)
        return out


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

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield body chunks as the app sends them."""
        while True:
            getter = asyncio.ensure_future(self._exchange.chunks.get())
            waiting: set[asyncio.Future[Any]] = {getter, self._task}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                self._task.result()  # the app failed: raise its error
                return
            chunk = getter.result()
            if chunk is None:
                return
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
