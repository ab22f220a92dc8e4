"""The async test client and CLI runner.

:class:`FlaskClient` is Flask's test client (cookies, redirects, sessions,
preserved contexts: all of it) with ``await``-able requests that go through
the app's real ASGI entry point, ``app(scope, receive, send)``, in-process.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import flask.testing
import werkzeug.test
from flask.sessions import SessionMixin
from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_current_url as wsgi_current_url

from .bridge import await_, in_bridge, run_sync

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["FlaskCliRunner", "FlaskClient", "StreamedResponse", "environ_to_scope"]

#: Size of the http.request messages a request body is sent in.
BODY_CHUNK_SIZE = 64 * 1024

# Keys of the environ that travel in the ASGI scope itself; the others (the
# test client's own, such as werkzeug.debug.preserve_context) are passed on
# through the scope's "aioflask.environ" entry.
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

#: Set while FlaskClient.open runs on the bridge (redirects call open again).
_opening: contextvars.ContextVar[bool] = contextvars.ContextVar("aioflask_opening", default=False)


def environ_to_scope(environ: dict[str, Any]) -> dict[str, Any]:
    """Build an ASGI HTTP scope from a WSGI environ (what a server would send)."""
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
        if k not in _SCOPE_KEYS and not k.startswith(("HTTP_", "wsgi."))
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


class FlaskClient(flask.testing.FlaskClient):
    """Flask's test client with async requests over the app's ASGI path.

    ``await client.get(...)`` (and every other method, with Flask's arguments:
    ``json=``, ``data=``, ``headers=``, ``query_string=``,
    ``follow_redirects=``) returns Flask's test response, with the body read.
    ``async with client:`` keeps the last request's context pushed for
    inspection, like Flask's ``with client:``; ``async with
    client.session_transaction() as session:`` edits the session.

    .. versionadded:: 0.5
    """

    application: Flask

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """Make a request; returns an awaitable of the test response."""
        if _opening.get() and in_bridge():
            # A redirect being followed from within Flask's client.
            return super().open(*args, **kwargs)
        return self._open(*args, **kwargs)

    async def _open(self, *args: Any, **kwargs: Any) -> werkzeug.test.TestResponse:
        kwargs.setdefault("buffered", True)
        return await run_sync(self._open_on_bridge, args, kwargs)

    def _open_on_bridge(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        token = _opening.set(True)
        try:
            return flask.testing.FlaskClient.open(self, *args, **kwargs)
        finally:
            _opening.reset(token)

    def run_wsgi_app(
        self, environ: dict[str, Any], buffered: bool = False
    ) -> tuple[Iterable[bytes], str, Headers]:
        # Werkzeug's, but the app is called through ASGI (see _call_asgi).
        self._add_cookies_to_wsgi(environ)
        rv = werkzeug.test.run_wsgi_app(self._call_asgi, environ, buffered=buffered)
        url = urlsplit(wsgi_current_url(environ))
        self._update_cookies_from_response(
            url.hostname or "localhost", url.path, rv[2].getlist("Set-Cookie")
        )
        return rv

    def _call_asgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """A WSGI app that calls ``self.application`` as ASGI (on the bridge)."""
        exchange = _Exchange(environ.get("wsgi.input"))
        scope = environ_to_scope(environ)
        # Awaited in the caller's task and context, so contexts the request
        # preserves are pushed where the test can see and pop them.
        await_(self.application(scope, exchange.receive, exchange.send))
        if exchange.status is None:
            raise RuntimeError("The app returned without sending a response.")
        start_response(exchange.status_line(), exchange.header_list())
        return exchange.body()

    @asynccontextmanager
    async def stream(
        self, method: str, *args: Any, **kwargs: Any
    ) -> AsyncIterator[StreamedResponse]:
        """Make a request and read the response as it streams.

        ::

            async with client.stream("GET", "/events") as response:
                async for chunk in response.aiter_bytes():
                    ...

        Leaving the block while the app still streams disconnects the client:
        the app's streaming body is closed, or its awaiting view cancelled.
        Cookies are sent but not updated; contexts are not preserved.
        """
        request = self._request_from_builder_args(args, {**kwargs, "method": method})
        environ = request.environ
        self._add_cookies_to_wsgi(environ)
        exchange = _Exchange(environ.get("wsgi.input"))
        task = asyncio.ensure_future(
            self.application(environ_to_scope(environ), exchange.receive, exchange.send)
        )
        started = asyncio.ensure_future(exchange.started.wait())
        try:
            await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
            if not exchange.started.is_set():
                task.result()
                raise RuntimeError("The app returned without sending a response.")
            yield StreamedResponse(exchange, task)
        finally:
            started.cancel()
            exchange.disconnect()
            await task

    async def __aenter__(self) -> FlaskClient:
        self.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Popping runs teardown functions, which may be async.
        await run_sync(self.__exit__, exc_type, exc_value, tb)

    @asynccontextmanager
    async def session_transaction(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[SessionMixin]:
        """Open the client's session for editing; it is saved on exit.

        ::

            async with client.session_transaction() as session:
                session["user_id"] = 1
        """
        cm = super().session_transaction(*args, **kwargs)
        session = await run_sync(cm.__enter__)
        try:
            yield session
        except BaseException as exc:
            if not await run_sync(cm.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await run_sync(cm.__exit__, None, None, None)


class FlaskCliRunner(flask.testing.FlaskCliRunner):
    """Flask's CLI test runner; ``await runner.invoke(...)``.

    The command runs on the bridge, so ``async def`` commands and ``await_``
    work inside it.

    .. versionadded:: 0.5
    """

    async def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return await run_sync(super().invoke, cli, args, **kwargs)
