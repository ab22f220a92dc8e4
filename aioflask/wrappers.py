"""Request and response objects: Flask's, with async iterables as bodies."""

from __future__ import annotations

import io
import sys
import types
from typing import IO, Any

import flask
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge, RequestTimeout
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from .core.bridge import iterate
from .core.http import HTTPConnection
from .core.timeouts import BodyTimeout, Timeouts


def _timeouts(environ: dict[str, Any]) -> Timeouts | None:
    """The progress timeouts of the request (None outside an ASGI server)."""
    connection: HTTPConnection | None = environ.get(HTTPConnection.environ_key)
    return connection.timeouts if connection is not None else None


def _raise_timeout(error: Exception | None) -> None:
    """A body that stalled past ``BODY_TIMEOUT`` answers 408, not 400."""
    if isinstance(error, BodyTimeout):
        raise RequestTimeout(f"The request body made no progress for {error.seconds} s.")


__all__ = ["Request", "Response", "sync_body"]


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


class Request(flask.Request):
    """Flask's :class:`~flask.Request`, with the body limit always enforced.

    .. versionadded:: 0.5
    """

    @cached_property
    def stream(self) -> IO[bytes]:
        """The request body, read from the server as it is read here."""
        if self.shallow or "wsgi.input_terminated" not in self.environ:
            return super().stream
        limit = self.max_content_length
        length = self.content_length
        if limit is not None and length is not None and length > limit:
            raise RequestEntityTooLarge()
        stream = self.environ["wsgi.input"]
        if length is not None:
            # The server ends the body at Content-Length (ASGI servers enforce it).
            return _DeclaredLengthStream(stream, length)  # type: ignore[return-value]
        return _BodyStream(stream, sys.maxsize if limit is None else limit, is_max=True)  # type: ignore[return-value]

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
        if hasattr(response, "__aiter__"):
            response = sync_body(response)
        super().__init__(response, *args, **kwargs)
