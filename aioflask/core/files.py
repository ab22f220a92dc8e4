"""``wsgi.file_wrapper``: files in large blocks, or sent by the server itself.

PEP 3333 made ``wsgi.file_wrapper`` the place where a server may send a file
its own way: an application that returns the wrapper's object hands the server
the file, not just its bytes. Werkzeug's ``send_file`` (and so Flask's
``send_file``, ``send_from_directory`` and static files) uses it. Where the
ASGI server advertises the ``http.response.pathsend`` extension (granian
does), :class:`~aioflask.core.http.HTTPConnection` sends the file's path and
the server reads and sends the file, without a byte of it passing through
Python; elsewhere the file is read here in :data:`FILE_CHUNK_SIZE` blocks.
"""

from __future__ import annotations

import io
import os
import stat
from typing import IO

__all__ = ["FILE_CHUNK_SIZE", "PATHSEND", "FileWrapper"]

#: Block size for files sent through ``wsgi.file_wrapper`` (send_file).
FILE_CHUNK_SIZE = 64 * 1024

#: The ASGI extension (in ``scope["extensions"]``) and message type of a
#: response body the server sends from a file's path.
PATHSEND = "http.response.pathsend"


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in large blocks; ``close()`` closes it.

    :param file: a binary file, opened for reading.
    :param block_size: the block size the application asks for; blocks are at
        least :data:`FILE_CHUNK_SIZE` (64 KiB) bytes.

    .. versionadded:: 0.5
    """

    __slots__ = ("block_size", "file")

    def __init__(self, file: IO[bytes], block_size: int = 8192) -> None:
        self.file = file
        self.block_size = max(block_size, FILE_CHUNK_SIZE)

    def __iter__(self) -> FileWrapper:
        # Its own iterator, as Werkzeug's: a range of it (``_RangeWrapper``)
        # closes the file through it, and seeks to the range's start.
        return self

    def __next__(self) -> bytes:
        data = self.file.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        close = getattr(self.file, "close", None)
        if close is not None:
            close()

    def seekable(self) -> bool:
        seekable = getattr(self.file, "seekable", None)
        return bool(seekable()) if seekable is not None else hasattr(self.file, "seek")

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def path(self, length: int | None) -> str | None:
        """The absolute path of the file, if sending the file found there is
        the same as iterating this wrapper; else ``None``.

        That is: a file opened with ``open(path, "rb")`` from an absolute path
        (not a subclass, whose ``read`` may differ, nor a file-like object such
        as :class:`io.BytesIO`), still open and at its start, a regular file,
        still the one at its path (not replaced or deleted since), and of
        ``length`` bytes (the response's ``Content-Length``; ``None``: none
        was given).
        """
        file = self.file
        if type(file) is not io.BufferedReader:
            return None
        name = file.name
        if not isinstance(name, str) or not os.path.isabs(name):
            return None
        try:
            if file.tell() != 0:
                return None
            opened = os.fstat(file.fileno())
            found = os.stat(name)
        except (OSError, ValueError):  # closed, or gone from its path
            return None
        if (
            not stat.S_ISREG(opened.st_mode)
            or (opened.st_dev, opened.st_ino) != (found.st_dev, found.st_ino)
            or (length is not None and opened.st_size != length)
        ):
            return None
        return name
