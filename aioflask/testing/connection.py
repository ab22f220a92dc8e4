"""An HTTP request whose body the test sends piece by piece: ``client.request(...)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import werkzeug.test
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_current_url as wsgi_current_url

from .._compat import add_cookies_to_wsgi, request_from_builder_args, update_cookies_from_response
from ..core.dual import dual
from .body import ManualSource
from .http import _Exchange

if TYPE_CHECKING:
    from .client import FlaskClient

__all__ = ["TestHTTPConnection"]


class TestHTTPConnection:
    """The client side of a request opened by :meth:`FlaskClient.request`.

    The test sends the body with :meth:`send` and ends it with
    :meth:`send_complete`; the app runs alongside and reads each chunk as it
    arrives. The response is read chunk by chunk with :meth:`receive`, or
    whole with :meth:`as_response`. Each method returns its result in a sync
    test and an awaitable in an async one; the app runs while they wait.

    .. versionadded:: 0.5
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        client: FlaskClient,
        request: Request,
        exchange: _Exchange,
        source: ManualSource,
        task: asyncio.Future[None],
    ) -> None:
        self._client = client
        self._request = request
        self._exchange = exchange
        self._source = source
        self._task = task

    @property
    def status_code(self) -> int | None:
        """The response's status code, once the app has started it."""
        return self._exchange.status

    @property
    def headers(self) -> Headers | None:
        """The response's headers, once the app has started it."""
        if self._exchange.status is None:
            return None
        return Headers(self._exchange.header_list())

    @property
    def extension_messages(self) -> list[dict[str, Any]]:
        """The ASGI messages the app sent that the client does not handle, in order.

        See :attr:`StreamedResponse.extension_messages
        <aioflask.testing.StreamedResponse.extension_messages>`.
        """
        return self._exchange.extension_messages

    async def _put(self, message: dict[str, Any]) -> None:
        taken = self._source.put(message)
        # Until the app receives it: then it may read it before the test goes on.
        await asyncio.wait({taken, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not taken.done():
            # The app finished without reading it (it answered early, a 413
            # say): the data is dropped, as a server drops it.
            self._task.result()

    @dual(call="connection.send(...)")
    async def send(self, data: bytes) -> None:
        """Send a chunk of the request body; returns once the app has received it.

        Once the app has finished (it answered without reading the whole
        body), the data is dropped; if the app failed, its error is raised.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"connection.send() takes bytes, not {type(data).__name__}.")
        await self._put({"type": "http.request", "body": bytes(data), "more_body": True})

    @dual(call="connection.send_complete(...)")
    async def send_complete(self, data: bytes = b"") -> None:
        """End the request body (with a last chunk ``data``)."""
        await self._put({"type": "http.request", "body": bytes(data), "more_body": False})

    @dual(call="connection.disconnect(...)")
    async def disconnect(self) -> None:
        """Go away, as a client closing its connection, and wait for the app to end.

        Before the end of the body, the app's read of the body raises (as with
        a server); during the response, a streaming response is closed, an
        awaiting view cancelled.
        """
        self._exchange.disconnect()
        await self._task

    @dual(call="connection.receive(...)")
    async def receive(self) -> bytes:
        """The next chunk of the response body, as the app sent it; ``b""`` at its end."""
        chunk = await self._exchange.next_chunk(self._task)
        return b"" if chunk is None else chunk

    @dual(call="connection.as_response(...)")
    async def as_response(self) -> werkzeug.test.TestResponse:
        """Wait for the app to finish and return its response, with the whole body.

        Ends the request body first if the test has not (:meth:`send_complete`).
        The client's cookies are updated from it.
        """
        if not self._source.done:
            self._source.put({"type": "http.request", "body": b"", "more_body": False})
        await self._task
        exchange = self._exchange
        if exchange.status is None:
            raise RuntimeError("The app returned without sending a response.")
        headers = Headers(exchange.header_list())
        environ = self._request.environ
        url = urlsplit(wsgi_current_url(environ))
        update_cookies_from_response(
            self._client, url.hostname or "localhost", url.path, headers.getlist("Set-Cookie")
        )
        response = self._client.response_wrapper(
            exchange.body(), exchange.status_line(), headers, request=self._request
        )
        response.extension_messages = exchange.extension_messages  # type: ignore[attr-defined]
        return response


@asynccontextmanager
async def open_connection(
    client: FlaskClient, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> AsyncIterator[TestHTTPConnection]:
    """Start the app on a request whose body the test sends: ``client.request(...)``."""
    for name in ("data", "json", "input_stream"):
        if kwargs.get(name) is not None:
            raise TypeError(
                f"client.request() takes no {name}=: send the body with"
                " connection.send(...) and connection.send_complete()."
            )
    request = request_from_builder_args(client, args, kwargs)
    environ = request.environ
    add_cookies_to_wsgi(client, environ)
    source = ManualSource()
    environ["wsgi.input"] = source
    exchange = _Exchange(source)
    async with exchange.running(client.application, environ, client.lifespan_state) as task:
        yield TestHTTPConnection(client, request, exchange, source, task)
