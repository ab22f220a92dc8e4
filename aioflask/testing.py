"""The async test client and CLI runner.

:class:`FlaskClient` is Flask's test client (cookies, redirects, sessions,
preserved contexts: all of it) with ``await``-able requests that go through
the app's real ASGI entry point, ``app(scope, receive, send)``, in-process.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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
from .websockets import WebSocketClosed

if TYPE_CHECKING:
    from .app import Flask

__all__ = [
    "FlaskCliRunner",
    "FlaskClient",
    "LifespanError",
    "StreamedResponse",
    "WebSocketRejected",
    "WebSocketSession",
    "environ_to_scope",
]

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

    def websocket(
        self, *args: Any, subprotocols: Iterable[str] = (), **kwargs: Any
    ) -> AbstractAsyncContextManager[WebSocketSession]:
        """Open a WebSocket connection to the app; see :class:`WebSocketSession`.

        ::

            async with client.websocket("/ws/lobby", subprotocols=["chat"]) as ws:
                await ws.send("hello")
                assert await ws.receive() == "hello"

        Takes the arguments of :meth:`get` (``query_string=``, ``headers=``...);
        the client's cookies are sent and updated from the handshake. A
        refused handshake raises :exc:`WebSocketRejected`. Leaving the block
        closes the connection (code 1000) and waits for the handler to end.

        .. versionadded:: 0.5
        """
        return _connect(self, args, kwargs, list(subprotocols))

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Run the app's ASGI lifespan around a block, as a server would.

        ::

            async with client.lifespan():
                ...  # before_serving hooks have run

        ``before_serving`` hooks run on entry (a failure raises
        :exc:`LifespanError`); on exit the background tasks are drained and
        the ``after_serving`` hooks run.

        .. versionadded:: 0.5
        """
        return _lifespan(self.application)

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


# -- WebSocket sessions and the lifespan protocol ---------------------------------


class WebSocketRejected(Exception):
    """The app refused a WebSocket handshake; :attr:`response` is its answer.

    .. versionadded:: 0.5
    """

    def __init__(self, response: Any) -> None:
        super().__init__(f"The WebSocket handshake was refused: {response.status}")
        #: The refusal as a response object (``status_code``, ``headers``, ``data``).
        self.response = response


class LifespanError(RuntimeError):
    """A ``before_serving`` or ``after_serving`` hook failed; the message is the server's.

    .. versionadded:: 0.5
    """


class _WebSocketExchange:
    """The server side of one ASGI WebSocket connection (what uvicorn does)."""

    def __init__(self) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.handshake = asyncio.Event()
        self.accept: dict[str, Any] | None = None
        self.refusal: dict[str, Any] | None = None
        self.refusal_body: list[bytes] = []
        self.closed = False  # by either side

    async def receive(self) -> dict[str, Any]:
        message = await self.to_app.get()
        if message["type"] == "websocket.disconnect":
            self.to_app.put_nowait(message)  # for any later call
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if not self.handshake.is_set():
            if kind == "websocket.accept":
                self.accept = message
            elif kind == "websocket.close":  # a server answers 403
                self.refusal = {"status": 403, "headers": []}
            elif kind == "websocket.http.response.start" and self.refusal is None:
                self.refusal = message
                return
            elif kind == "websocket.http.response.body" and self.refusal is not None:
                self.refusal_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} during the handshake.")
            self.handshake.set()
        elif self.refusal is not None or self.closed:
            if self.refusal is None and kind in ("websocket.send", "websocket.close"):
                raise OSError("The client disconnected.")  # like uvicorn's ClientDisconnected
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after the connection closed.")
        elif kind == "websocket.send":
            self.from_app.put_nowait(message)
        elif kind == "websocket.close":
            self.closed = True
            self.from_app.put_nowait(message)
            self.to_app.put_nowait(
                {"type": "websocket.disconnect", "code": message.get("code", 1000)}
            )
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} on an open WebSocket.")


async def _first(aw: Any, task: asyncio.Future[Any], what: str) -> Any:
    """Await ``aw``, unless the app's ``task`` ends first (then raise its error)."""
    future = asyncio.ensure_future(aw)
    await asyncio.wait({future, task}, return_when=asyncio.FIRST_COMPLETED)
    if future.done():
        return future.result()
    future.cancel()
    task.result()
    raise RuntimeError(f"The app returned without {what}.")


class WebSocketSession:
    """The client side of a WebSocket connection opened by :meth:`FlaskClient.websocket`.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Flask, exchange: _WebSocketExchange, task: asyncio.Future[None]):
        self._app = app
        self._exchange = exchange
        self._task = task
        accept = exchange.accept or {}
        #: The subprotocol the app accepted, or ``None``.
        self.subprotocol: str | None = accept.get("subprotocol")
        #: The extra headers of the handshake response.
        self.headers = Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in accept.get("headers", [])]
        )
        #: The close code once the app closed the connection.
        self.close_code: int | None = None
        self.close_reason = ""

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app."""
        if self._exchange.closed:
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        key = "text" if isinstance(data, str) else "bytes"
        self._exchange.to_app.put_nowait({"type": "websocket.receive", key: data})

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON (with the app's JSON provider)."""
        await self.send(self._app.json.dumps(obj))

    async def receive(self) -> str | bytes:
        """The next message from the app; :exc:`WebSocketClosed` once it closed."""
        message = await _first(self._exchange.from_app.get(), self._task, "closing the WebSocket")
        if message["type"] == "websocket.close":
            self._exchange.from_app.put_nowait(message)
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""
            raise WebSocketClosed(self.close_code, self.close_reason)
        text = message.get("text")
        return (message.get("bytes") or b"") if text is None else text

    async def receive_json(self) -> Any:
        """The next message, decoded as JSON."""
        return self._app.json.loads(await self.receive())

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Messages until the app closes the connection."""
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.receive()
            except WebSocketClosed:
                return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (the app's handler is cancelled) and wait for the app."""
        if not self._exchange.closed:
            self._exchange.closed = True
            disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._exchange.to_app.put_nowait(disconnect)
        await self._task


def _websocket_scope(client: FlaskClient, environ: dict[str, Any], subprotocols: list[str]) -> Any:
    scope = environ_to_scope(environ)
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    headers = [h for h in scope["headers"] if h[0] not in (b"content-type", b"content-length")]
    headers += [
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", base64.b64encode(os.urandom(16))),
    ]
    if subprotocols:
        headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
    scope["headers"] = headers
    return scope


@asynccontextmanager
async def _connect(
    client: FlaskClient, args: tuple[Any, ...], kwargs: dict[str, Any], subprotocols: list[str]
) -> AsyncIterator[WebSocketSession]:
    request = client._request_from_builder_args(args, {**kwargs, "method": "GET"})
    environ = request.environ
    client._add_cookies_to_wsgi(environ)
    exchange = _WebSocketExchange()
    app = client.application
    scope = _websocket_scope(client, environ, subprotocols)
    task = asyncio.ensure_future(app(scope, exchange.receive, exchange.send))
    try:
        await _first(exchange.handshake.wait(), task, "answering the WebSocket handshake")
    except BaseException:
        task.cancel()
        raise
    url = urlsplit(wsgi_current_url(environ))
    answer = exchange.accept or exchange.refusal or {}
    cookies = [v.decode("latin-1") for k, v in answer.get("headers", []) if k == b"set-cookie"]
    client._update_cookies_from_response(url.hostname or "localhost", url.path, cookies)
    if exchange.refusal is not None:
        await task
        response = app.response_class(
            b"".join(exchange.refusal_body),
            status=exchange.refusal["status"],
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer["headers"]],
        )
        raise WebSocketRejected(response)
    session = WebSocketSession(app, exchange, task)
    try:
        yield session
    finally:
        await session.close()


@asynccontextmanager
async def _lifespan(app: Flask) -> AsyncIterator[None]:
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, to_app.get, from_app.put))
    to_app.put_nowait({"type": "lifespan.startup"})
    message = await _first(from_app.get(), task, "answering lifespan.startup")
    if message["type"] != "lifespan.startup.complete":
        await task
        raise LifespanError(message.get("message", ""))
    try:
        yield
    finally:
        to_app.put_nowait({"type": "lifespan.shutdown"})
        message = await _first(from_app.get(), task, "answering lifespan.shutdown")
        await task
        if message["type"] != "lifespan.shutdown.complete":
            raise LifespanError(message.get("message", ""))
