"""WebSocket sessions and the lifespan protocol in the test client."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers
from werkzeug.wsgi import get_current_url as wsgi_current_url

from .._compat import add_cookies_to_wsgi, request_from_builder_args, update_cookies_from_response
from ..core.bridge import iterate
from ..core.dual import dual
from ..core.lifespan import LifespanError
from ..websockets import WebSocketClosed, messages_until_closed
from .http import environ_to_scope

if TYPE_CHECKING:
    from ..app import Flask
    from .client import FlaskClient

__all__ = ["LifespanError", "WebSocketRejected", "WebSocketSession"]


class WebSocketRejected(Exception):
    """The app refused a WebSocket handshake; :attr:`response` is its answer.

    .. versionadded:: 0.5
    """

    def __init__(self, response: Any) -> None:
        super().__init__(f"The WebSocket handshake was refused: {response.status}")
        #: The refusal as a response object (``status_code``, ``headers``, ``data``).
        self.response = response


# The messages the client handles; others are recorded (extension_messages).
_KNOWN = frozenset(
    {
        "websocket.accept",
        "websocket.send",
        "websocket.close",
        "websocket.http.response.start",
        "websocket.http.response.body",
    }
)


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
        #: The messages the client does not handle, as the app sent them.
        self.extension_messages: list[dict[str, Any]] = []

    @dual(call="ws.receive(...)")
    async def receive(self) -> dict[str, Any]:
        message = await self.to_app.get()
        if message["type"] == "websocket.disconnect":
            self.to_app.put_nowait(message)  # for any later call
        return message

    @dual(call="ws.send(...)")
    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind not in _KNOWN:
            self.extension_messages.append(message)
        elif not self.handshake.is_set():
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

    Its methods are awaited in an async test; a sync test calls them without
    ``await`` (and iterates with ``for``): the app's handler runs on the
    test's private event loop while they wait.

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
        #: The ASGI messages the app sent that the client does not handle, in
        #: order (the scope advertises only ``websocket.http.response``).
        self.extension_messages = exchange.extension_messages
        #: The close code once the app closed the connection.
        self.close_code: int | None = None
        self.close_reason = ""

    @dual(call="ws.send(...)")
    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to the app."""
        if self._exchange.closed:
            raise WebSocketClosed(self.close_code or 1000, self.close_reason)
        key = "text" if isinstance(data, str) else "bytes"
        self._exchange.to_app.put_nowait({"type": "websocket.receive", key: data})

    @dual(call="ws.send_json(...)")
    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON (with the app's JSON provider)."""
        await self.send(self._app.json.dumps(obj))

    @dual(call="ws.receive(...)")
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

    @dual(call="ws.receive_json(...)")
    async def receive_json(self) -> Any:
        """The next message, decoded as JSON."""
        return self._app.json.loads(await self.receive())

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Messages until the app closes the connection."""
        return messages_until_closed(self._receive)

    def __iter__(self) -> Iterator[str | bytes]:
        """Messages until the app closes the connection (sync code)."""
        return iterate(self)

    async def _receive(self) -> str | bytes:
        return await self.receive()  # type: ignore[no-any-return]

    @dual(call="ws.close(...)")
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (the app's handler is cancelled) and wait for the app."""
        if not self._exchange.closed:
            self._exchange.closed = True
            disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._exchange.to_app.put_nowait(disconnect)
        await self._task


def _websocket_scope(client: FlaskClient, environ: dict[str, Any], subprotocols: list[str]) -> Any:
    scope = environ_to_scope(environ, client.lifespan_state)
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
    request = request_from_builder_args(client, args, {**kwargs, "method": "GET"})
    environ = request.environ
    add_cookies_to_wsgi(client, environ)
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
    update_cookies_from_response(client, url.hostname or "localhost", url.path, cookies)
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
async def _lifespan(app: Flask, state: dict[str, Any]) -> AsyncIterator[None]:
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    # Each run starts afresh, as a server (re)started would.
    state.clear()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
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
