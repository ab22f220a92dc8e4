"""Server-sent events: stream events from an async generator.

::

    @app.get("/events")
    def events():
        async def generate():
            while True:
                yield ServerSentEvent(await next_update(), event="update")

        return sse_response(generate())

The response has the headers an event stream needs, sends a comment line when
no event went out for ``keepalive`` seconds (so proxies and load balancers do
not time the connection out), and closes the generator when the client goes
away (its ``finally`` blocks run).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

import flask

from .core.bridge import Cancellation, run_sync
from .wrappers import Response

__all__ = ["KEEPALIVE", "ServerSentEvent", "sse_response"]

#: What is sent when no event went out for a while: a comment, which clients ignore.
KEEPALIVE = b": keep-alive\n\n"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DONE = object()


def _field(name: str, value: object) -> str:
    text = str(value)
    if "\r" in text or "\n" in text or (name == "id" and "\0" in text):
        raise ValueError(
            f"An event's {name} cannot contain a line break{' or NUL' * (name == 'id')}."
        )
    return text


class ServerSentEvent:
    """One event of a ``text/event-stream`` response.

    :param data: the event's data: a string as it is (line breaks are
        allowed), anything else as JSON.
    :param event: the event type (``addEventListener(type, ...)`` in the
        browser); none means ``"message"``.
    :param id: the event id, which the browser sends back as the
        ``Last-Event-ID`` header when it reconnects.
    :param retry: how long the browser waits before reconnecting, in milliseconds.

    .. versionadded:: 0.5
    """

    __slots__ = ("data", "event", "id", "retry")

    def __init__(
        self,
        data: Any = "",
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
    ) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def encode(self, dumps: Callable[[Any], str] = json.dumps) -> bytes:
        """The event in the wire format, ending with its blank line.

        :param dumps: encodes data that is not a string (the app's JSON
            provider in :func:`sse_response`).
        """
        lines = []
        if self.event is not None:
            lines.append(f"event: {_field('event', self.event)}")
        if self.id is not None:
            lines.append(f"id: {_field('id', self.id)}")
        if self.retry is not None:
            lines.append(f"retry: {int(self.retry)}")
        data = self.data if isinstance(self.data, str) else dumps(self.data)
        lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
        return ("\n".join(lines) + "\n\n").encode()

    def __repr__(self) -> str:
        return f"ServerSentEvent(data={self.data!r}, event={self.event!r}, id={self.id!r})"


def sse_response(
    events: AsyncIterable[Any] | Iterable[Any],
    *,
    keepalive: float | None = 15.0,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A streaming ``text/event-stream`` response of the events an iterable yields.

    It may yield :class:`ServerSentEvent` objects, or data for plain
    ``message`` events (strings as they are, anything else as JSON). The
    events are produced in a task of their own (one context for the whole
    stream); a sync iterable runs on the bridge, so it may
    :func:`~aioflask.await_`.

    The iterable is consumed after the view returns, so, as with any
    streaming response, the request context is gone by then: read what you
    need from ``request`` in the view (``request.headers.get("Last-Event-ID")``),
    or wrap the generator in :func:`~aioflask.stream_with_context` (which
    delays teardown, and so holds what teardown releases, until the stream
    ends).

    :param events: an async generator or any async iterable, or a sync one.
    :param keepalive: seconds without an event after which a comment line is
        sent; ``None`` for none.
    :param status: the response status.
    :param headers: more response headers.

    .. versionadded:: 0.5
    """
    dumps: Callable[[Any], str] = json.dumps
    response_class = Response
    if flask.has_app_context():
        dumps = flask.current_app.json.dumps
        response_class = flask.current_app.response_class  # type: ignore[assignment]
    response = response_class(
        _stream(events, keepalive, dumps), status=status, mimetype="text/event-stream"
    )
    response.headers["Cache-Control"] = "no-cache"
    # nginx buffers proxied responses unless told not to.
    response.headers["X-Accel-Buffering"] = "no"
    if headers:
        response.headers.update(headers)
    return response


def _encode(item: Any, dumps: Callable[[Any], str]) -> bytes:
    event = item if isinstance(item, ServerSentEvent) else ServerSentEvent(item)
    return event.encode(dumps)


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


async def _produce(events: Iterable[Any] | AsyncIterable[Any], queue: asyncio.Queue[Any]) -> None:
    """Run the whole event source in this one task (one context), item by item."""
    end: Any = _DONE
    try:
        if isinstance(events, AsyncIterable):
            iterator = events.__aiter__()
            try:
                async for item in iterator:
                    await queue.put(item)
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
        else:
            # A sync iterable (stream_with_context's) is stepped on the bridge.
            items = iter(events)
            try:
                while (item := await run_sync(next, items, _DONE)) is not _DONE:
                    await queue.put(item)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    await run_sync(close)
    except Exception as exc:
        end = _Raised(exc)
    await queue.put(end)


async def _stream(
    events: Iterable[Any] | AsyncIterable[Any], keepalive: float | None, dumps: Callable[[Any], str]
) -> AsyncIterator[bytes]:
    # The events are produced in a task of their own, so that waiting for one
    # can time out (for a keep-alive) without cancelling, and so ending, them.
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    producer = asyncio.ensure_future(_produce(events, queue))
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except asyncio.TimeoutError:
                yield KEEPALIVE
                continue
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield _encode(item, dumps)
    finally:
        # The client went away (or the stream ended): stop the event source,
        # and again if it swallows the cancellation (it would wait forever to
        # put its next event in the queue).
        await Cancellation(producer).wait()
        if not producer.cancelled():
            producer.result()  # an error while closing it
