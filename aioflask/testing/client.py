"""The test client and CLI runner, for sync and async tests.

:class:`FlaskClient` is Flask's test client (cookies, redirects, sessions,
preserved contexts: all of it) whose requests go through the app's real ASGI
entry point, ``app(scope, receive, send)``, in-process: they return the
response to sync code and an awaitable to coroutines (see :func:`~aioflask.core.dual.dual`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import flask.testing
import werkzeug.test
from flask.sessions import SessionMixin
from werkzeug.datastructures import Headers
from werkzeug.wsgi import get_current_url as wsgi_current_url

from .._compat import add_cookies_to_wsgi, request_from_builder_args, update_cookies_from_response
from ..core.bridge import await_, run_sync
from ..core.dual import DualContext, dual
from .body import RequestStream, is_stream
from .connection import TestHTTPConnection, open_connection
from .http import EXTENSION_MESSAGES, StreamedResponse, _Exchange, environ_to_scope
from .websocket import WebSocketSession, _connect, _lifespan

if TYPE_CHECKING:
    from ..app import Flask

__all__ = ["FlaskCliRunner", "FlaskClient", "on_aioflask_client"]


class FlaskClient(flask.testing.FlaskClient):
    """Flask's test client, over the app's ASGI path, for sync and async tests.

    ``client.get(...)`` (and every other method, with Flask's arguments:
    ``json=``, ``data=``, ``headers=``, ``query_string=``,
    ``follow_redirects=``) returns Flask's test response, with the body read,
    in a sync test, and an awaitable of it in an async one. ``with client:``
    (``async with``) keeps the last request's context pushed for inspection;
    ``with client.session_transaction() as session:`` (``async with``) edits
    the session.

    .. versionadded:: 0.5
    """

    application: Flask

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The ASGI lifespan state: :meth:`lifespan` hands it to the app, and
        #: every request's scope gets a shallow copy, as servers do.
        #:
        #: .. versionadded:: 0.5
        self.lifespan_state: dict[str, Any] = {}

    def _open_here(self, *args: Any, **kwargs: Any) -> werkzeug.test.TestResponse:
        kwargs.setdefault("buffered", True)
        response = flask.testing.FlaskClient.open(self, *args, **_streamed_data(kwargs))
        #: The ASGI messages the app sent that the client does not handle
        #: (see StreamedResponse.extension_messages).
        response.extension_messages = response.request.environ.get(EXTENSION_MESSAGES, [])  # type: ignore[attr-defined]
        return response

    @dual(_open_here, call="client.get(...)")
    async def open(self, *args: Any, **kwargs: Any) -> werkzeug.test.TestResponse:
        """Make a request: the response from sync code, an awaitable in a coroutine."""
        return await run_sync(self._open_here, *args, **kwargs)

    def run_wsgi_app(
        self, environ: dict[str, Any], buffered: bool = False
    ) -> tuple[Iterable[bytes], str, Headers]:
        # Werkzeug's, but the app is called through ASGI (see _call_asgi).
        add_cookies_to_wsgi(self, environ)
        environ[EXTENSION_MESSAGES] = []  # filled by _call_asgi, on a copy of environ
        rv = werkzeug.test.run_wsgi_app(self._call_asgi, environ, buffered=buffered)
        url = urlsplit(wsgi_current_url(environ))
        update_cookies_from_response(
            self, url.hostname or "localhost", url.path, rv[2].getlist("Set-Cookie")
        )
        return rv

    def _call_asgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """A WSGI app that calls ``self.application`` as ASGI (on the bridge)."""
        exchange = _Exchange(environ.get("wsgi.input"))
        exchange.extension_messages = environ.get(EXTENSION_MESSAGES, [])
        scope = environ_to_scope(environ, self.lifespan_state)
        # Awaited in the caller's task and context, so contexts the request
        # preserves are pushed where the test can see and pop them.
        try:
            await_(self.application(scope, exchange.receive, exchange.send))
        finally:
            if exchange.stream is not None:
                await_(exchange.stream.aclose())
        if exchange.status is None:
            raise RuntimeError("The app returned without sending a response.")
        start_response(exchange.status_line(), exchange.header_list())
        return exchange.body()

    def stream(self, method: str, *args: Any, **kwargs: Any) -> DualContext[StreamedResponse]:
        """Make a request and read the response as it streams.

        ::

            async with client.stream("GET", "/events") as response:
                async for chunk in response.aiter_bytes():
                    ...

            with client.stream("GET", "/events") as response:  # in a sync test
                for chunk in response.iter_bytes():
                    ...

        Leaving the block while the app still streams disconnects the client:
        the app's streaming body is closed, or its awaiting view cancelled.
        Cookies are sent but not updated; contexts are not preserved.
        """
        return DualContext(self._stream(method, args, kwargs), "client.stream(...)")

    @asynccontextmanager
    async def _stream(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[StreamedResponse]:
        request = request_from_builder_args(
            self, args, {**_streamed_data(kwargs), "method": method}
        )
        environ = request.environ
        add_cookies_to_wsgi(self, environ)
        exchange = _Exchange(environ.get("wsgi.input"))
        async with exchange.running(self.application, environ, self.lifespan_state) as task:
            started = asyncio.ensure_future(exchange.started.wait())
            try:
                await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
            if not exchange.started.is_set():
                task.result()
                raise RuntimeError("The app returned without sending a response.")
            yield StreamedResponse(exchange, task)

    def request(self, *args: Any, **kwargs: Any) -> DualContext[TestHTTPConnection]:
        """Open a request whose body the test sends piece by piece; see :class:`TestHTTPConnection`.

        ::

            async with client.request("/upload", method="POST") as connection:
                await connection.send(b"part 1")  # returns once the app has it
                await connection.send(b"part 2")
                await connection.send_complete()
                response = await connection.as_response()

            with client.request("/upload", method="POST") as connection:  # sync
                connection.send(b"part 1")
                ...

        Takes the arguments of :meth:`open` except the body (``data=``,
        ``json=``): the body goes chunked, unless ``content_length=`` declares
        its length. The app starts at once and reads the
        body as it arrives. Leaving the block before the app finished
        disconnects the client. Contexts are not preserved.

        .. versionadded:: 0.5
        """
        return DualContext(open_connection(self, args, kwargs), "client.request(...)")

    def websocket(
        self, *args: Any, subprotocols: Iterable[str] = (), **kwargs: Any
    ) -> DualContext[WebSocketSession]:
        """Open a WebSocket connection to the app; see :class:`WebSocketSession`.

        ::

            async with client.websocket("/ws/lobby", subprotocols=["chat"]) as ws:
                await ws.send("hello")
                assert await ws.receive() == "hello"

            with client.websocket("/ws/lobby") as ws:  # in a sync test
                ws.send("hello")
                assert ws.receive() == "hello"

        Takes the arguments of :meth:`get` (``query_string=``, ``headers=``...);
        the client's cookies are sent and updated from the handshake. A
        refused handshake raises :exc:`WebSocketRejected`. Leaving the block
        closes the connection (code 1000) and waits for the handler to end.

        .. versionadded:: 0.5
        """
        return DualContext(
            _connect(self, args, kwargs, list(subprotocols)), "client.websocket(...)"
        )

    def lifespan(self) -> DualContext[None]:
        """Run the app's ASGI lifespan around a block, as a server would.

        ::

            with client.lifespan():  # or `async with` in an async test
                ...  # before_serving hooks have run

        ``before_serving`` hooks and ``while_serving`` generators run on
        entry (a failure raises :exc:`LifespanError`); on exit the background
        tasks are drained and the ``after_serving`` hooks and the rest of the
        generators run. What the hooks put in ``app.lifespan_state`` goes to
        :attr:`lifespan_state`, which requests of this client see as
        ``request.state``.

        .. versionadded:: 0.5
        """
        return DualContext(_lifespan(self.application, self.lifespan_state), "client.lifespan()")

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

    def session_transaction(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> DualContext[SessionMixin]:
        """Open the client's session for editing; it is saved on exit.

        ::

            with client.session_transaction() as session:  # in a sync test
                session["user_id"] = 1

            async with client.session_transaction() as session:  # in an async one
                session["user_id"] = 1
        """
        cm = super().session_transaction(*args, **kwargs)
        return DualContext(cm, "client.session_transaction()")


def _streamed_data(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``data=`` an iterator or async iterable: a body sent chunk by chunk as the app reads."""
    if is_stream(kwargs.get("data")):
        kwargs = dict(kwargs)
        kwargs["input_stream"] = RequestStream(kwargs.pop("data"))
    return kwargs


@functools.cache
def on_aioflask_client(cls: type[flask.testing.FlaskClient]) -> type[FlaskClient]:
    """``cls``, a subclass of Flask's test client, on top of aioflask's.

    Extensions subclass ``flask.testing.FlaskClient`` (Flask-Login's
    ``FlaskLoginClient``); the same class with :class:`FlaskClient` under it
    sends its requests through the ASGI app and answers coroutines too.
    """
    if issubclass(cls, FlaskClient):
        return cls
    return type(cls.__name__, (cls, FlaskClient), {"__module__": cls.__module__})


class FlaskCliRunner(flask.testing.FlaskCliRunner):
    """Flask's CLI test runner: ``runner.invoke(...)``, or ``await`` it in a coroutine.

    Called from sync code, it runs the command as the ``flask`` command
    does: with no event loop running (so a sync command may call
    ``asyncio.run()``); an ``async def`` command runs on a private loop.
    Awaited, the command runs on the bridge, on the caller's loop, so
    ``async def`` commands and ``await_`` work inside it.

    .. versionadded:: 0.5
    """

    @dual(flask.testing.FlaskCliRunner.invoke, call="runner.invoke(...)")
    async def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:
        """Invoke a command: the result from sync code, an awaitable in a coroutine."""
        return await run_sync(flask.testing.FlaskCliRunner.invoke, self, cli, args, **kwargs)
