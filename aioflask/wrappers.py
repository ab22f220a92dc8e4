"""Request and response objects: Flask's, with async iterables as bodies."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

import flask
import werkzeug.wrappers
from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, RequestTimeout
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from ._compat import AppLimits, headers_of
from .core.bridge import iterate
from .core.caches import BoundedCache
from .core.http import HTTPConnection, encode_headers
from .core.lifespan import State, scope_state
from .core.timeouts import BodyTimeout, Timeouts


def _timeouts(environ: dict[str, Any]) -> Timeouts | None:
    """The progress timeouts of the request (None outside an ASGI server)."""
    connection: HTTPConnection | None = environ.get(HTTPConnection.environ_key)
    return connection.timeouts if connection is not None else None


def _raise_timeout(error: Exception | None) -> None:
    """A body that stalled past ``BODY_TIMEOUT`` answers 408, not 400."""
    if isinstance(error, BodyTimeout):
        raise RequestTimeout(f"The request body made no progress for {error.seconds} s.")


__all__ = ["Request", "Response", "new_response", "sync_body"]


class _BodyStream(LimitedStream):
    """The request body of a server that ends the stream itself (ASGI).

    Unlike Werkzeug's stream with a maximum, this one answers 413 whenever the
    body goes past ``max_content_length``, also when read whole (Werkzeug's
    ``readall`` stops at the limit), and not when a body of exactly the limit
    is read to its end. A client gone mid-body is Werkzeug's
    :exc:`~werkzeug.exceptions.ClientDisconnected` (400), not a server error.
    """

    def __init__(self, stream: IO[bytes], limit: int, is_max: bool = False) -> None:
        super().__init__(stream, limit, is_max=is_max)
        self._source = stream  # Werkzeug's own reference is private

    def on_exhausted(self) -> None:
        if self._source.read(1):
            raise RequestEntityTooLarge()

    def on_disconnect(self, error: Exception | None = None) -> None:
        if error is not None:
            _raise_timeout(error)
            super().on_disconnect(error)

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:
            self.on_exhausted()
        return data


class _DeclaredLengthStream(io.RawIOBase):
    """A body of declared length (Content-Length), read from the server's stream.

    The server ends the body at that length (ASGI servers enforce it), so this
    only counts, and reads the rest in one ``read`` when read whole (Werkzeug's
    ``LimitedStream.readall`` goes through 64 KiB ``readinto`` calls, each with
    a zeroed buffer and copies). A shorter body is a disconnect: Werkzeug's
    :exc:`~werkzeug.exceptions.ClientDisconnected` (400), as with Werkzeug's stream.
    """

    def __init__(self, stream: Any, length: int) -> None:
        super().__init__()
        self._source = stream
        self._length = length
        self._remaining = length

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._length - self._remaining

    def readinto(self, b: Any) -> int:
        # A read of nothing is not a disconnect.
        if not len(b) or self._remaining <= 0:
            return 0
        data = self._read(min(len(b), self._remaining), whole=False)
        b[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self._read(self._remaining, whole=True) if self._remaining > 0 else b""

    def _read(self, size: int, whole: bool) -> bytes:
        try:
            data = self._source.read(size) if whole else self._source.read1(size)
        except (OSError, ValueError) as e:
            _raise_timeout(e)
            raise ClientDisconnected() from e
        self._remaining -= len(data)
        if not data or (whole and len(data) < size):
            raise ClientDisconnected()
        return bytes(data)


_CONTENT_LENGTH = werkzeug.wrappers.Request.content_length


def _content_length(request: werkzeug.wrappers.Request) -> int | None:
    """``request.content_length``: Werkzeug's, read from the environ itself.

    Through ``request.headers`` it cost two header lookups, the one of an
    absent ``Transfer-Encoding`` a ``KeyError`` raised and caught (~11,000
    instructions per body read, benchmarks/instructions.py). A request class
    that changes the property, or headers not of the environ, get theirs.
    """
    headers = request.headers
    environ = request.environ
    if (
        type(request).content_length is not _CONTENT_LENGTH
        or type(headers) is not EnvironHeaders
        or headers.environ is not environ
    ):
        return request.content_length
    return get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))


class Request(AppLimits):
    """Flask's :class:`~flask.Request`, with the body limit always enforced.

    .. versionadded:: 0.5
    """

    @cached_property
    def stream(self) -> IO[bytes]:
        """The request body, read from the server as it is read here."""
        if self.shallow or "wsgi.input_terminated" not in self.environ:
            return super().stream
        limit = self.max_content_length
        length = _content_length(self)
        if limit is not None and length is not None and length > limit:
            raise RequestEntityTooLarge()
        stream = self.environ["wsgi.input"]
        if length is not None:
            # The server ends the body at Content-Length (ASGI servers enforce it).
            return _DeclaredLengthStream(stream, length)  # type: ignore[return-value]
        return _BodyStream(stream, sys.maxsize if limit is None else limit, is_max=True)  # type: ignore[return-value]

    @cached_property
    def state(self) -> State:
        """This request's copy of the ASGI lifespan state (``scope["state"]``).

        What the serving hooks put in :attr:`~aioflask.Flask.lifespan_state`
        at startup, read as attributes (``request.state.pool``). The server
        copies the state (shallowly) into each request: a name set here is
        this request's own, while the objects are shared. A WebSocket
        handler reads it here too.

        :raise RuntimeError: not under an ASGI server (WSGI mode, a
            ``test_request_context``), or the server sends no state.

        .. versionadded:: 0.5
        """
        scope = self.environ.get("asgi.scope")
        if scope is None:
            raise RuntimeError(
                "request.state needs an ASGI server: this request has no ASGI scope"
                " (WSGI mode or a test_request_context). Use the test client for requests"
                " in tests."
            )
        return scope_state(scope)

    @property
    def body_timeout(self) -> float | None:
        """Seconds the body may make no progress before reading it fails with 408.

        ``BODY_TIMEOUT`` (60) by default; set it in the view (or a
        ``before_request`` hook) before reading the body to change it for this
        request; ``None`` waits without limit. Each wait for the next part of
        the body is bounded, not the whole upload. Only under an ASGI server.

        .. versionadded:: 0.5
        """
        timeouts = _timeouts(self.environ)
        if timeouts is None:
            return self.__dict__.get("_body_timeout", flask.current_app.config["BODY_TIMEOUT"])  # type: ignore[no-any-return]
        return timeouts.body

    @body_timeout.setter
    def body_timeout(self, seconds: float | None) -> None:
        timeouts = _timeouts(self.environ)
        if timeouts is None:
            self.__dict__["_body_timeout"] = seconds
        else:
            timeouts.body = seconds


def sync_body(body: Any) -> Any:
    """Adapt an async iterable body to a sync iterator (others pass through)."""
    if hasattr(body, "__aiter__") and not hasattr(body, "__iter__"):
        return iterate(body)
    return body


class Response(flask.Response):
    """Flask's :class:`~flask.Response`, also accepting an async iterable body.

    An async generator (or any async iterable) is iterated one item per
    :func:`~aioflask.await_` while the response is sent; it is closed
    (``aclose()``) when the response is closed, including on client disconnect.

    .. versionadded:: 0.5
    """

    _timeout: float | types.EllipsisType | None = ...

    @property
    def timeout(self) -> float | types.EllipsisType | None:
        """Seconds each send of this response, when it streams, may make no
        progress (the client does not read) before the body is closed and the
        connection closed.

        ``...`` (the default): ``RESPONSE_TIMEOUT`` (60); ``None``: no limit.
        Set it while handling the request the response is for (in the view, an
        ``after_request`` function). Only under an ASGI server.

        .. versionadded:: 0.5
        """
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float | types.EllipsisType | None) -> None:
        # Into the request's timeouts at once: reading it when the response is
        # sent would cost every response a Python-level __call__ (1.4% of a
        # JSON ping, benchmarks/instructions.py).
        self._timeout = seconds
        if flask.has_request_context():
            timeouts = _timeouts(flask.request.environ)
            if timeouts is not None:
                app = flask.current_app
                timeouts.response = app.config["RESPONSE_TIMEOUT"] if seconds is ... else seconds

    def __init__(self, response: Any = None, *args: Any, **kwargs: Any) -> None:
        # The type test first: hasattr() failing on str or bytes costs ~4,000
        # instructions per response (benchmarks/flask_steps.py).
        if (
            type(response) is not str
            and type(response) is not bytes
            and hasattr(response, "__aiter__")
        ):
            response = sync_body(response)
        super().__init__(response, *args, **kwargs)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Werkzeug's ``Response.__call__``, with less work for the common response.

        The same status, headers and body as Werkzeug's
        :meth:`~werkzeug.wrappers.Response.get_wsgi_response`, without copying
        the headers into a new :class:`~werkzeug.datastructures.Headers`; and
        when Flask's own ``wsgi_app`` (not wrapped by middleware) serves an ASGI
        request, handed to the connection in ASGI's terms. A response whose
        class overrides what Werkzeug's method calls, or with a ``Location`` or
        ``Content-Location`` header or a bodiless status, takes Werkzeug's way.
        """
        auto_length = _plain_headers(self)
        if auto_length is None:
            return super().__call__(environ, start_response)
        body = self.response
        connection = environ.get(HTTPConnection.environ_key)
        if (
            type(body) is list
            and not self.direct_passthrough
            and isinstance(connection, HTTPConnection)
            and start_response == connection.start_response
            and type(connection).start_response is HTTPConnection.start_response
            # Flask's own wsgi_app, not wrapped by middleware: the body goes
            # straight back to the connection, which iterates and closes it.
            and getattr(connection.app, "__func__", None) is flask.Flask.wsgi_app
            and environ["REQUEST_METHOD"] != "HEAD"
            and all(type(chunk) is bytes for chunk in body)
        ):
            # Saves ~4,000-7,000 instructions per request over start_response
            # (JSON ping, ASGI def view: 367.2k -> 363.0k; async def view:
            # 376.2k -> 369.2k; benchmarks/instructions.py).
            headers, length = encode_headers(self.headers)
            if auto_length:
                length = sum(map(len, body))
                headers.append((b"content-length", str(length).encode()))
            connection.start(int(self.status[:3]), headers, length)
            return _ClosingList(body, self.close)
        wsgi_headers = list(self.headers)
        if auto_length:
            length = sum(len(x) for x in self.iter_encoded())
            wsgi_headers.append(("Content-Length", str(length)))
        app_iter = self.get_app_iter(environ)
        start_response(self.status, wsgi_headers)
        return app_iter


# What Response.__call__ calls; a class that overrides none of them is "plain".
_WSGI_METHODS = ("get_wsgi_headers", "get_app_iter", "get_wsgi_response", "iter_encoded", "close")
# Response class -> whether it is plain. With the rest of __call__, saves
# ~22,000-31,000 instructions per request (JSON ping, ASGI def view: 398.0k ->
# 367.2k; WSGI mode: 324.0k -> 301.7k; benchmarks/instructions.py).
_PLAIN: BoundedCache[type, bool] = BoundedCache(256)


def _plain_headers(response: Response) -> bool | None:
    """Whether ``get_wsgi_headers`` would add ``Content-Length`` to the
    response's headers and change nothing else; ``None`` if it would do more
    (or might: the class is not plain)."""
    cls = type(response)
    plain = _PLAIN.get(cls)
    if plain is None:
        base = werkzeug.wrappers.Response
        same = all(getattr(cls, name) is getattr(base, name) for name in _WSGI_METHODS)
        plain = _PLAIN.put(cls, same)
    if not plain:
        return None
    status = response.status_code
    if status < 200 or status == 204 or status == 304:
        return None
    content_length = None
    for key, _value in response.headers:
        ikey = key.lower()
        if ikey == "content-length":
            content_length = ikey
        elif ikey == "location" or ikey == "content-location":
            return None
    return (
        content_length is None
        and response.automatically_set_content_length
        and response.is_sequence
    )


class _ClosingList:
    """A response body of bytes, and the response's ``close``."""

    __slots__ = ("_chunks", "close")

    def __init__(self, chunks: list[bytes], close: Callable[[], None]) -> None:
        self._chunks = chunks
        self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def new_response(cls: type[_R], body: str | bytes, mimetype: str | None = None) -> _R | None:
    """``cls(body, mimetype=mimetype)``, for a ``str`` or ``bytes`` body;
    ``None`` for a class that builds its responses otherwise (then call it).

    Werkzeug's constructor works out the same status and ``Content-Type`` for
    every response of a class and mimetype, validating the header each time
    (~34,000 instructions a response). For a class that builds its responses
    as :class:`Response` does (no override of the constructor or of what it
    calls), the first response of each (class, mimetype) is built by the
    constructor and kept as a template; the next ones are made from it with
    their own body, ``Content-Length``, header list and close callbacks: the
    same attributes with the same values, ~9,000 instructions.
    """
    # The class attributes the constructor reads are part of the key, so a
    # change to one of them is seen at the next response.
    key = (
        cls,
        mimetype,
        cls.default_mimetype,
        cls.default_status,
        cls.automatically_set_content_length,
    )
    template = _TEMPLATES.get(key)
    if template is None:
        template = _TEMPLATES.put(key, _template(cls, mimetype))
    if template is False:
        return None
    fields, content_type, sets_length = template  # type: ignore[misc]
    if type(body) is str:
        body = body.encode()
    items = [content_type, ("Content-Length", str(len(body)))] if sets_length else [content_type]
    response: _R = _new(cls)
    response.__dict__.update(fields, headers=headers_of(items), _on_close=[], response=[body])
    return response


_R = TypeVar("_R", bound=werkzeug.wrappers.Response)
_new = object.__new__
# What Werkzeug's constructor calls on the response.
_CONSTRUCTOR_CALLS = ("set_data", "status", "_clean_status")
# The attributes a new response gets of its own, not from the template.
_OWN = ("headers", "_on_close", "response")
_IMMUTABLE = (str, int, float, bool, type(None), bytes, tuple)
_Template = tuple[dict[str, Any], tuple[str, str], bool]
# (class, mimetype, class attributes) -> template, or False for a class whose
# responses are not built as Response's are. Saves ~25,000 instructions per
# JSON, string or bytes response (callgrind, JSON ping: ~34,000 -> ~9,000).
_TEMPLATES: BoundedCache[tuple[Any, ...], _Template | bool] = BoundedCache(256)


def _template(cls: Any, mimetype: str | None) -> _Template | bool:
    """What every ``cls(body, mimetype=mimetype)`` shares, from one built by
    the constructor; ``False`` if the class builds them otherwise."""
    base = werkzeug.wrappers.Response
    if (
        cls.__new__ is not _new
        or cls.__init__ is not Response.__init__
        or any(getattr(cls, name) is not getattr(base, name) for name in _CONSTRUCTOR_CALLS)
        or any(hasattr(cls, name) for name in _OWN)
    ):
        return False
    sample = cls(b"", mimetype=mimetype)
    items = list(sample.headers)
    if type(sample.headers) is not Headers or sample.response != [b""] or sample._on_close:
        return False
    sets_length = cls.automatically_set_content_length
    if not items or items[0][0] != "Content-Type":
        return False  # no Content-Type (no mimetype): the constructor's way
    if items[1:] != ([("Content-Length", "0")] if sets_length else []):
        return False
    fields = {name: value for name, value in vars(sample).items() if name not in _OWN}
    if any(hasattr(cls, name) or type(value) not in _IMMUTABLE for name, value in fields.items()):
        return False
    return fields, items[0], sets_length
