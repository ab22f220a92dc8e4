"""``wsgi.file_wrapper`` and ``http.response.pathsend``: files sent by the
server from their path where it can, streamed as before everywhere else."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import aioflask
from _helpers import call, http_scope
from aioflask.core.files import FILE_CHUNK_SIZE, PATHSEND, FileWrapper

DATA = bytes(range(256)) * (FILE_CHUNK_SIZE // 128 + 3)  # several blocks


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "static" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(DATA)
    return path


class Reads:
    """Counts what the application read of the files it sent (after_request)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.files: list[Any] = []

    def watch(self, response: aioflask.Response) -> aioflask.Response:
        body = response.response
        body = getattr(body, "iterable", body)  # a range of the file (Werkzeug's _RangeWrapper)
        file = getattr(body, "file", None)
        if type(file) is io.BufferedReader:
            read = file.read

            def counting(size: int | None = -1) -> bytes:
                data = read(size)
                self.bytes += len(data)
                return data

            file.read = counting  # type: ignore[method-assign]
            self.files.append(file)
        return response


@pytest.fixture
def reads() -> Reads:
    return Reads()


@pytest.fixture
def app(data_file: Path, reads: Reads) -> aioflask.Flask:
    app = aioflask.Flask(__name__, static_folder=str(data_file.parent))
    app.after_request(reads.watch)

    @app.get("/file")
    def file() -> Any:
        return aioflask.send_file(data_file)

    return app


def pathsend_scope(path: str = "/file", **kwargs: Any) -> dict[str, Any]:
    """A scope from a server that advertises ``http.response.pathsend``."""
    scope = http_scope(path, **kwargs)
    scope["extensions"] = {PATHSEND: {}}
    return scope


def assert_pathsend(exchange: Any, path: Path) -> None:
    assert [m["type"] for m in exchange.sent] == ["http.response.start", PATHSEND]
    assert exchange.sent[1]["path"] == str(path)
    assert exchange.headers["content-length"] == str(path.stat().st_size)


# FileWrapper


def test_file_wrapper_reads_in_large_blocks_and_closes_the_file() -> None:
    file = io.BytesIO(DATA)
    wrapper = FileWrapper(file, 4)
    chunks = list(wrapper)
    assert b"".join(chunks) == DATA
    assert [len(b) for b in chunks[:-1]] == [FILE_CHUNK_SIZE] * (len(DATA) // FILE_CHUNK_SIZE)
    assert not file.closed
    wrapper.close()
    assert file.closed


def test_file_wrapper_closes_a_file_it_never_read() -> None:
    file = io.BytesIO(DATA)
    FileWrapper(file).close()
    assert file.closed


def test_file_wrapper_path_is_only_for_a_whole_file_opened_from_its_path(data_file: Path) -> None:
    size = len(DATA)
    with data_file.open("rb") as file:
        assert FileWrapper(file).path(size) == str(data_file)
        assert FileWrapper(file).path(None) == str(data_file)
        assert FileWrapper(file).path(size - 1) is None  # not what the response declares
        file.seek(1)
        assert FileWrapper(file).path(size) is None  # not from its start
    assert FileWrapper(file).path(size) is None  # closed
    assert FileWrapper(io.BytesIO(DATA)).path(size) is None  # not a file on disk
    with data_file.open("r+b") as file:
        assert FileWrapper(file).path(size) is None  # not open(path, "rb")

    class Reader(io.BufferedReader):
        pass

    with Reader(io.FileIO(data_file)) as file:
        assert FileWrapper(file).path(size) is None  # its read() may differ
    cwd = os.getcwd()
    os.chdir(data_file.parent)
    try:
        with open(data_file.name, "rb") as file:
            assert FileWrapper(file).path(size) is None  # a relative path
    finally:
        os.chdir(cwd)
    with data_file.open("rb") as file:
        data_file.unlink()
        assert FileWrapper(file).path(size) is None  # gone from its path
        data_file.write_bytes(DATA)
        assert FileWrapper(file).path(size) is None  # another file there now


def test_file_wrapper_of_a_fifo_has_no_path(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb", closefd=True) as file:
        assert FileWrapper(file).path(None) is None  # opened from a number
    with open(fifo, "rb", buffering=io.DEFAULT_BUFFER_SIZE, opener=_nonblocking) as file:
        assert FileWrapper(file).path(None) is None  # not a regular file


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


# The server sends the file from its path


async def test_send_file_hands_the_path_to_the_server(app, data_file, reads) -> None:  # type: ignore[no-untyped-def]
    exchange = await call(app, pathsend_scope())
    assert exchange.status == 200
    assert_pathsend(exchange, data_file)
    assert reads.bytes == 0  # not a byte of it read by the application
    assert [f.closed for f in reads.files] == [True]


async def test_static_files_are_sent_by_the_server(app, data_file, reads) -> None:  # type: ignore[no-untyped-def]
    exchange = await call(app, pathsend_scope("/static/data.bin"))
    assert_pathsend(exchange, data_file)
    assert reads.bytes == 0


async def test_send_file_of_a_file_opened_by_the_view(app, data_file, reads) -> None:  # type: ignore[no-untyped-def]
    @app.get("/opened")
    def opened() -> Any:
        return aioflask.send_file(data_file.open("rb"), mimetype="application/octet-stream")

    exchange = await call(app, pathsend_scope("/opened"))
    assert [m["type"] for m in exchange.sent] == ["http.response.start", PATHSEND]
    assert exchange.sent[1]["path"] == str(data_file)
    assert reads.bytes == 0
    assert [f.closed for f in reads.files] == [True]


async def test_without_the_extension_the_file_streams(app, reads) -> None:  # type: ignore[no-untyped-def]
    exchange = await call(app, http_scope("/file"))
    assert exchange.body == DATA
    assert PATHSEND not in [m["type"] for m in exchange.sent]
    assert reads.bytes == len(DATA)
    assert [f.closed for f in reads.files] == [True]


# Everything else streams as before


async def test_a_range_streams_and_closes_the_file(app, reads) -> None:  # type: ignore[no-untyped-def]
    start, end = FILE_CHUNK_SIZE + 10, FILE_CHUNK_SIZE + 99
    scope = pathsend_scope(headers=[(b"range", f"bytes={start}-{end}".encode())])
    exchange = await call(app, scope)
    assert exchange.status == 206
    assert exchange.body == DATA[start : end + 1]
    assert exchange.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert reads.bytes < len(DATA)  # seeks to the range: reads one block
    assert [f.closed for f in reads.files] == [True]


async def test_a_conditional_request_answers_304_and_closes_the_file(app, reads) -> None:  # type: ignore[no-untyped-def]
    first = await call(app, pathsend_scope())
    etag = first.headers["etag"].encode()
    exchange = await call(app, pathsend_scope(headers=[(b"if-none-match", etag)]))
    assert exchange.status == 304
    assert exchange.body == b""
    assert PATHSEND not in [m["type"] for m in exchange.sent]
    assert [f.closed for f in reads.files] == [True, True]


async def test_head_sends_no_body_and_closes_the_file(app, reads) -> None:  # type: ignore[no-untyped-def]
    exchange = await call(app, pathsend_scope(method="HEAD"))
    assert exchange.status == 200
    assert exchange.headers["content-length"] == str(len(DATA))
    assert exchange.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]
    assert reads.bytes == 0
    assert [f.closed for f in reads.files] == [True]


async def test_a_file_like_object_streams(app) -> None:  # type: ignore[no-untyped-def]
    body = io.BytesIO(DATA)

    @app.get("/memory")
    def memory() -> Any:
        return aioflask.send_file(body, mimetype="application/octet-stream")

    exchange = await call(app, pathsend_scope("/memory"))
    assert exchange.body == DATA
    assert PATHSEND not in [m["type"] for m in exchange.sent]
    assert body.closed


async def test_a_body_wrapped_by_middleware_streams(app, reads) -> None:  # type: ignore[no-untyped-def]
    inner = app.wsgi_app

    def upper(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        body = inner(environ, start_response)
        try:
            for chunk in body:
                yield chunk.upper()
        finally:
            body.close()  # type: ignore[attr-defined]

    app.wsgi_app = upper  # type: ignore[method-assign]
    exchange = await call(app, pathsend_scope())
    assert exchange.body == DATA.upper()
    assert [f.closed for f in reads.files] == [True]


async def test_a_file_replaced_before_the_response_is_sent_streams(app, data_file, reads) -> None:  # type: ignore[no-untyped-def]
    @app.teardown_request
    def replace(error: BaseException | None) -> None:
        data_file.unlink()
        data_file.write_bytes(b"x" * len(DATA))

    exchange = await call(app, pathsend_scope())
    # The file the view opened, as before: not whatever is at its path now.
    assert exchange.body == DATA
    assert PATHSEND not in [m["type"] for m in exchange.sent]


# Through a real server


def test_uvicorn_has_no_pathsend_the_file_streams(start_server, data_file) -> None:  # type: ignore[no-untyped-def]
    server = start_server("files_app:app", env={"FILES_DIR": str(data_file.parent)})
    for url in ("/file/data.bin", "/static/data.bin"):
        response = httpx.get(server.url + url)
        assert response.status_code == 200
        assert response.content == DATA
    assert httpx.get(server.url + "/reads").json()["bytes"] == 2 * len(DATA)
    response = httpx.get(server.url + "/file/data.bin", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == DATA[10:20]
