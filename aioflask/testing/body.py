"""Request bodies in the test client: where the ``http.request`` messages come from.

Each source answers the app's ``receive()`` with the next message, only when
the app asks: a body is never read ahead of the app, as through a server
that reads the socket on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import IO, Any

__all__ = ["BODY_CHUNK_SIZE", "RequestStream", "is_stream"]

#: Size of the http.request messages a request body is sent in.
BODY_CHUNK_SIZE = 64 * 1024

_END: dict[str, Any] = {"type": "http.request", "body": b"", "more_body": False}


def is_stream(data: object) -> bool:
    """Whether ``data=`` is a streamed body: an iterator or an async iterable of bytes.

    Werkzeug reads strings, bytes, files and mappings (form fields) whole;
    lists and tuples stay Werkzeug's, too.
    """
    return hasattr(data, "__aiter__") or (isinstance(data, Iterator) and not hasattr(data, "read"))


class FileSource:
    """A body read from a file (what Werkzeug builds), in :data:`BODY_CHUNK_SIZE` messages."""

    __slots__ = ("_file",)

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    async def next(self) -> dict[str, Any]:
        data = self._file.read(BODY_CHUNK_SIZE)
        more = len(data) == BODY_CHUNK_SIZE
        return {"type": "http.request", "body": data, "more_body": more}


class RequestStream:
    """A ``data=`` iterable sent as a chunked body: one message per chunk.

    The next chunk is taken from the iterable when the app reads past the
    last one. It stands in Werkzeug's ``input_stream`` (which measures
    streams with ``seek``/``tell``), so the request is built as usual; the
    scope then has ``Transfer-Encoding: chunked`` instead of a length.

    .. versionadded:: 0.5
    """

    def __init__(self, chunks: Iterable[bytes] | AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self._aiter: AsyncIterator[bytes] | None = None
        self._iter: Iterator[bytes] | None = None
        if isinstance(chunks, AsyncIterable):
            self._aiter = aiter(chunks)
        else:
            self._iter = iter(chunks)

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        raise TypeError("A streamed request body is sent by the test client, not read.")

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None and self._iter is not None:
            close()  # a generator the app did not read to the end

    async def aclose(self) -> None:
        """Close the iterable (a generator the app did not read to the end)."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            self.close()

    async def next(self) -> dict[str, Any]:
        try:
            if self._aiter is not None:
                chunk = await anext(self._aiter)
            else:
                assert self._iter is not None
                chunk = next(self._iter)
        except (StopIteration, StopAsyncIteration):
            return _END
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"A streamed request body must yield bytes, not {type(chunk).__name__}:"
                " encode text first."
            )
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}


class ManualSource:
    """A body the test sends piece by piece (:class:`~aioflask.testing.TestHTTPConnection`).

    :meth:`put` waits until the app has received the message, so a test that
    sends a chunk knows the app could read it before the next is sent.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue()
        #: The last message (end of the body or a disconnect) was put.
        self.done = False

    def put(self, message: dict[str, Any]) -> asyncio.Future[None]:
        """Queue ``message``; the future is done once the app has it."""
        if self.done:
            raise RuntimeError(
                "The request body is already complete (or the client disconnected):"
                " nothing more can be sent."
            )
        self.done = message["type"] == "http.disconnect" or not message["more_body"]
        taken = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((message, taken))
        return taken

    async def next(self) -> dict[str, Any]:
        message, taken = await self._queue.get()
        if not taken.done():
            taken.set_result(None)
        return message
