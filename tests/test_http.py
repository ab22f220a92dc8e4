"""ASGI http scope <-> WSGI: the environ, the lazy request body, the response."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import weakref

import pytest
import werkzeug.exceptions
from werkzeug.sansio.utils import get_content_length

import aioflask
from _helpers import Exchange, body_messages, call, http_scope
from aioflask.core import environ as asgi
from aioflask.core.body import ClientDisconnected, InputStream, Receiver
from aioflask.core.bridge import await_, run_sync
from aioflask.core.environ import build_environ
from aioflask.core.files import FILE_CHUNK_SIZE
from aioflask.core.http import HTTPConnection, serve_http


def environ_for(**kwargs):
    return build_environ(http_scope(**kwargs), io.BytesIO())


@pytest.fixture
def app():
    app = aioflask.Flask(__name__)
    return app


# build_environ


def test_environ_basics():
    body = io.BytesIO(b"x")
    scope = http_scope("/p", method="PUT", http_version="2")
    environ = build_environ(scope, body)
    assert environ["REQUEST_METHOD"] == "PUT"
    assert environ["PATH_INFO"] == "/p"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["QUERY_STRING"] == ""
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.input"] is body
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["asgi.scope"] is scope
    assert callable(environ["wsgi.file_wrapper"])


def test_environ_of_each_request_is_its_own(monkeypatch):
    first = build_environ(http_scope("/a", method="PUT", query_string=b"x=1"), io.BytesIO())
    first["SERVER_NAME"] = "changed"
    first["wsgi.url_scheme"] = "changed"
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    body = io.BytesIO()
    scope = http_scope("/b", root_path="/r\u00e9", server=["other", 8080])
    environ = build_environ(scope, body)
    assert environ["SERVER_NAME"] == "other"
    assert environ["SERVER_PORT"] == "8080"
    assert environ["SCRIPT_NAME"] == "/r\u00e9".encode().decode("latin-1")
    assert environ["wsgi.errors"] is stderr
    second = build_environ(http_scope("/b"), body)
    assert (second["SERVER_NAME"], second["wsgi.url_scheme"]) == ("testserver", "http")
    assert (second["REQUEST_METHOD"], second["PATH_INFO"]) == ("GET", "/b")
    assert (second["QUERY_STRING"], second["SCRIPT_NAME"]) == ("", "")
    assert second["wsgi.input"] is body and second["asgi.scope"] is not scope
    # The keys in PEP 3333's order, then the server's extras and the headers.
    assert list(second)[:4] == ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"]


def test_environ_path_is_utf8_redecoded_as_latin1():
    environ = environ_for(path="/caf\u00e9/\u4e2d")
    assert environ["PATH_INFO"] == "/caf\u00e9/\u4e2d".encode().decode("latin-1")
    assert environ["PATH_INFO"] == "/caf\u00c3\u00a9/\u00e4\u00b8\u00ad"
    # Every character is a byte: PEP 3333's "bytes as str".
    environ["PATH_INFO"].encode("latin-1")


async def test_non_ascii_path_routes_and_round_trips(app):
    @app.get("/caf\u00e9/<name>")
    def view(name):
        return {"path": aioflask.request.path, "name": name}

    exchange = await call(app, http_scope("/caf\u00e9/\u00fc\u00df"))
    assert exchange.status == 200
    assert exchange.body == b'{"name":"\\u00fc\\u00df","path":"/caf\\u00e9/\\u00fc\\u00df"}\n'


def test_environ_script_name_from_root_path():
    # A server that does not include root_path in path.
    environ = environ_for(path="/users", root_path="/api")
    assert environ["SCRIPT_NAME"] == "/api"
    assert environ["PATH_INFO"] == "/users"


def test_environ_root_path_is_stripped_from_path():
    # ASGI servers (uvicorn --root-path) put root_path in front of path too.
    environ = environ_for(path="/api/users", root_path="/api")
    assert environ["SCRIPT_NAME"] == "/api"
    assert environ["PATH_INFO"] == "/users"
    assert environ_for(path="/api", root_path="/api")["PATH_INFO"] == ""


def test_environ_non_ascii_root_path():
    environ = environ_for(path="/\u00e9t\u00e9/x", root_path="/\u00e9t\u00e9")
    assert environ["SCRIPT_NAME"] == "/\u00e9t\u00e9".encode().decode("latin-1")
    assert environ["PATH_INFO"] == "/x"


def test_environ_root_path_is_only_stripped_at_a_segment_boundary():
    environ = environ_for(path="/apple", root_path="/app")
    assert environ["PATH_INFO"] == "/apple"


async def test_root_path_url_for(app):
    @app.get("/here")
    def here():
        return aioflask.url_for("here", _external=True)

    exchange = await call(app, http_scope("/api/here", root_path="/api"))
    assert exchange.body == b"http://testserver/api/here"


def test_environ_query_string():
    assert environ_for(query_string=b"a=1&b=%C3%A9")["QUERY_STRING"] == "a=1&b=%C3%A9"
    # Raw non-ASCII bytes stay bytes-as-latin-1.
    assert environ_for(query_string=b"q=\xc3\xa9")["QUERY_STRING"] == "q=\u00c3\u00a9"


async def test_query_string_in_flask(app):
    @app.get("/")
    def view():
        return aioflask.request.args.to_dict(flat=False)

    exchange = await call(app, http_scope(query_string=b"a=1&a=2&b=%C3%A9&c=\xc3\xa9"))
    assert exchange.body == b'{"a":["1","2"],"b":["\\u00e9"],"c":["\\u00e9"]}\n'


def test_environ_request_uri():
    environ = environ_for(path="/a b", query_string=b"x=1")
    assert environ["REQUEST_URI"] == environ["RAW_URI"] == "/a b?x=1"
    environ = environ_for(path="/p")
    assert environ["REQUEST_URI"] == "/p"


def test_environ_headers():
    environ = environ_for(
        headers=[
            (b"host", b"example.com"),
            (b"user-agent", b"test/1.0"),
            (b"x-custom-header", b"caf\xc3\xa9"),
        ]
    )
    assert environ["HTTP_HOST"] == "example.com"
    assert environ["HTTP_USER_AGENT"] == "test/1.0"
    assert environ["HTTP_X_CUSTOM_HEADER"] == "caf\u00c3\u00a9"


def test_environ_repeated_headers_are_joined_with_commas():
    environ = environ_for(
        headers=[(b"accept", b"text/html"), (b"x-multi", b"a"), (b"accept", b"application/json")]
    )
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert environ["HTTP_X_MULTI"] == "a"


def test_environ_repeated_cookies_are_joined_with_semicolons():
    environ = environ_for(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2; c=3")])
    assert environ["HTTP_COOKIE"] == "a=1; b=2; c=3"


async def test_repeated_cookie_headers_in_flask(app):
    @app.get("/")
    def view():
        return dict(aioflask.request.cookies)

    exchange = await call(app, http_scope(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")]))
    assert exchange.body == b'{"a":"1","b":"2"}\n'


def test_environ_header_names_with_underscores_are_dropped():
    for headers in (
        [(b"x_forwarded_for", b"evil"), (b"x-forwarded-for", b"good")],
        [(b"x-forwarded-for", b"good"), (b"x_forwarded_for", b"evil")],
    ):
        environ = environ_for(headers=headers)
        assert environ["HTTP_X_FORWARDED_FOR"] == "good"
    environ = environ_for(headers=[(b"x_only_underscore", b"evil")])
    assert not any("ONLY" in key for key in environ)


def test_environ_content_type_and_length_have_no_http_prefix():
    environ = environ_for(
        headers=[(b"content-type", b"application/json"), (b"content-length", b"12")]
    )
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "12"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_environ_remote_address():
    environ = environ_for(client=("10.1.2.3", 4567))
    assert environ["REMOTE_ADDR"] == "10.1.2.3"
    assert environ["REMOTE_PORT"] == "4567"
    environ = environ_for(client=None)
    assert "REMOTE_ADDR" not in environ
    assert "REMOTE_PORT" not in environ


def test_environ_server_name_and_port():
    environ = environ_for(server=("example.org", 8080))
    assert environ["SERVER_NAME"] == "example.org"
    assert environ["SERVER_PORT"] == "8080"


def test_environ_server_defaults():
    environ = environ_for(server=None)
    assert environ["SERVER_NAME"] == "localhost"
    assert environ["SERVER_PORT"] == "80"
    environ = environ_for(server=None, scheme="https")
    assert environ["SERVER_PORT"] == "443"
    # A unix socket: (path, None).
    environ = environ_for(server=("/tmp/app.sock", None))
    assert environ["SERVER_PORT"] == "80"


def test_environ_url_scheme():
    assert environ_for()["wsgi.url_scheme"] == "http"
    assert environ_for(scheme="https")["wsgi.url_scheme"] == "https"


def test_environ_minimal_scope():
    # Only the required keys of the ASGI spec.
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [],
    }
    environ = build_environ(scope, io.BytesIO())
    assert environ["SCRIPT_NAME"] == ""
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["SERVER_NAME"] == "localhost"
    assert "REQUEST_URI" not in environ


async def test_environ_in_flask_request(app):
    @app.get("/")
    def view():
        request = aioflask.request
        return {
            "remote_addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
            "url": request.url,
            "scope_type": request.environ["asgi.scope"]["type"],
        }

    exchange = await call(
        app,
        http_scope(
            scheme="https",
            client=("10.0.0.1", 1),
            server=("example.com", 8443),
            headers=[(b"host", b"example.com:8443")],
        ),
    )
    assert exchange.body == (
        b'{"host":"example.com:8443","remote_addr":"10.0.0.1","scheme":"https",'
        b'"scope_type":"http","url":"https://example.com:8443/"}\n'
    )


# InputStream


async def read_with(chunks, fn):
    """Call ``fn(stream, exchange)`` on the bridge, the body in several messages."""
    exchange = Exchange(body_messages(*chunks))
    stream = InputStream(Receiver(exchange.receive))
    return await run_sync(fn, stream, exchange)


async def test_input_read_all():
    result = await read_with([b"ab", b"", b"cd", b"ef"], lambda s, e: s.read())
    assert result == b"abcdef"


async def test_input_read_none_reads_all():
    assert await read_with([b"ab", b"cd"], lambda s, e: s.read(None)) == b"abcd"


async def test_input_read_sizes():
    def fn(stream, exchange):
        return [stream.read(3), stream.read(2), stream.read(10), stream.read(1), stream.read()]

    assert await read_with([b"ab", b"cd", b"ef"], fn) == [b"abc", b"de", b"f", b"", b""]


async def test_input_read_of_a_whole_message_takes_it_as_it_is():
    first = b"x" * 1000

    def fn(stream, exchange):
        data = stream.read(1000)
        taken = exchange.receives
        return data is first, taken, stream.read(2), stream.read(5), stream.read(3)

    assert await read_with([first, b"ab", b"cde"], fn) == (True, 1, b"ab", b"cde", b"")


async def test_input_read_zero():
    def fn(stream, exchange):
        return stream.read(0), exchange.receives

    assert await read_with([b"ab"], fn) == (b"", 0)


async def test_input_readline():
    def fn(stream, exchange):
        return [stream.readline() for _ in range(4)]

    result = await read_with([b"line1\nli", b"ne2\n", b"last"], fn)
    assert result == [b"line1\n", b"line2\n", b"last", b""]


async def test_input_readline_size():
    def fn(stream, exchange):
        return [stream.readline(3), stream.readline(3), stream.readline(-1), stream.readline()]

    assert await read_with([b"abcd\n", b"ef\n"], fn) == [b"abc", b"d\n", b"ef\n", b""]


async def test_input_iteration_and_readlines():
    lines = [b"one\n", b"two\n", b"three"]
    assert await read_with([b"one\nt", b"wo\nthr", b"ee"], lambda s, e: list(s)) == lines
    assert await read_with([b"one\nt", b"wo\nthr", b"ee"], lambda s, e: s.readlines()) == lines
    assert await read_with([b"one\ntwo\n", b"three"], lambda s, e: s.readlines(5)) == lines[:2]


async def test_input_read1_takes_at_most_one_message():
    def fn(stream, exchange):
        return [stream.read1(), stream.read1(1), stream.read1(10), stream.read1(), stream.read1()]

    result = await read_with([b"ab", b"cde", b"f"], fn)
    assert result == [b"ab", b"c", b"de", b"f", b""]


async def test_input_readinto():
    def fn(stream, exchange):
        out = []
        buffer = bytearray(4)
        while n := stream.readinto(buffer):
            out.append(bytes(buffer[:n]))
        view = memoryview(bytearray(2))
        return out, stream.readinto(view)

    assert await read_with([b"abcdef", b"gh"], fn) == ([b"abcd", b"ef", b"gh"], 0)


async def test_input_mixed_reads():
    def fn(stream, exchange):
        return stream.read(2), stream.readline(), stream.read1(), stream.read()

    assert await read_with([b"abc\nde", b"fgh"], fn) == (b"ab", b"c\n", b"de", b"fgh")


async def test_input_is_lazy():
    def fn(stream, exchange):
        counts = [exchange.receives]
        stream.read(1)
        counts.append(exchange.receives)
        stream.read(2)  # still in the first message
        counts.append(exchange.receives)
        stream.read(3)
        counts.append(exchange.receives)
        stream.read()
        counts.append(exchange.receives)
        return counts

    assert await read_with([b"abc", b"def", b"ghi"], fn) == [0, 1, 1, 2, 3]


async def test_input_readable_and_close():
    def fn(stream, exchange):
        stream.close()
        return stream.readable()

    assert await read_with([b"x"], fn) is True


async def test_input_disconnect_mid_body():
    exchange = Exchange(
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    )
    stream = InputStream(Receiver(exchange.receive))

    def fn():
        with pytest.raises(ClientDisconnected, match="disconnected"):
            stream.read()
        return stream.read()

    assert await run_sync(fn) == b""
    assert issubclass(ClientDisconnected, OSError)


# Request bodies through the app


async def test_body_in_several_messages_without_content_length(app):
    @app.post("/echo")
    def echo():
        return aioflask.request.get_data()

    exchange = await call(
        app,
        http_scope("/echo", method="POST"),
        Exchange(body_messages(b"hello ", b"", b"chunked ", b"world")),
    )
    assert exchange.status == 200
    assert exchange.body == b"hello chunked world"


async def test_body_with_content_length_read_whole_or_in_parts(app):
    @app.post("/whole")
    def whole():
        data = aioflask.request.get_data()
        return f"{len(data)} {data[:3].decode()} {aioflask.request.stream.read()!r}"

    @app.post("/parts")
    def parts():
        stream = aioflask.request.stream
        return b"|".join([stream.read(4), stream.read(1), stream.read()])

    body = b"abcdefghij" * 3
    for path, expected in [("/whole", b"30 abc b''"), ("/parts", b"abcd|e|" + body[5:])]:
        exchange = await call(
            app,
            http_scope(path, method="POST", headers=[(b"content-length", b"30")]),
            Exchange(body_messages(body[:7], body[7:20], body[20:])),
        )
        assert exchange.status == 200
        assert exchange.body == expected


async def test_reading_nothing_of_a_declared_body_is_not_a_disconnect(app):
    @app.post("/")
    def view():
        stream = aioflask.request.stream
        return stream.read(0) + b"|" + stream.read()

    exchange = await call(
        app,
        http_scope(method="POST", headers=[(b"content-length", b"3")]),
        Exchange(body_messages(b"abc")),
    )
    assert (exchange.status, exchange.body) == (200, b"|abc")


async def test_form_body_in_several_messages(app):
    @app.post("/form")
    def form():
        return dict(aioflask.request.form)

    exchange = await call(
        app,
        http_scope(
            "/form",
            method="POST",
            headers=[
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"11"),
            ],
        ),
        Exchange(body_messages(b"a=1&", b"b=2&c", b"=3")),
    )
    assert exchange.body == b'{"a":"1","b":"2","c":"3"}\n'


async def test_json_body_with_async_view(app):
    @app.post("/json")
    async def view():
        await asyncio.sleep(0)
        return {"got": aioflask.request.get_json()}

    exchange = await call(
        app,
        http_scope("/json", method="POST", headers=[(b"content-type", b"application/json")]),
        Exchange(body_messages(b'{"a": ', b"[1, 2]}")),
    )
    assert exchange.body == b'{"got":{"a":[1,2]}}\n'


async def test_form_with_async_view(app):
    @app.post("/form")
    async def view():
        return dict(aioflask.request.form)

    exchange = await call(
        app,
        http_scope(
            "/form",
            method="POST",
            headers=[(b"content-type", b"application/x-www-form-urlencoded")],
        ),
        Exchange(body_messages(b"a=1")),
    )
    assert exchange.body == b'{"a":"1"}\n'


async def test_async_view_reads_a_body_through_run_sync(app):
    @app.post("/json")
    async def view():
        data = await aioflask.run_sync(aioflask.request.get_json)
        await asyncio.sleep(0)
        # Once read, the body is cached: direct access works.
        return {"got": data, "again": aioflask.request.get_json()}

    exchange = await call(
        app,
        http_scope("/json", method="POST", headers=[(b"content-type", b"application/json")]),
        Exchange(body_messages(b'{"a": ', b"[1, 2]}")),
    )
    assert exchange.body == b'{"again":{"a":[1,2]},"got":{"a":[1,2]}}\n'


async def test_sync_before_request_reads_body_for_an_async_view(app):
    @app.before_request
    def load():
        aioflask.g.data = aioflask.request.get_data()

    @app.post("/")
    async def view():
        await asyncio.sleep(0)
        return aioflask.g.data + aioflask.request.get_data()

    exchange = await call(app, http_scope(method="POST"), Exchange(body_messages(b"ab", b"cd")))
    assert exchange.body == b"abcdabcd"


async def test_nothing_is_received_for_a_view_that_does_not_read_the_body(app):
    @app.route("/", methods=["GET", "POST"])
    def view():
        return "ok"

    exchange = await call(app, http_scope())
    assert exchange.body == b"ok"
    assert exchange.receives == 0

    exchange = await call(
        app, http_scope(method="POST"), Exchange(body_messages(b"unread", b"body"))
    )
    assert exchange.body == b"ok"
    assert exchange.receives == 0


#: Body bytes the disconnect watcher may receive ahead of the reader.
READ_AHEAD = getattr(asgi, "WATCH_BUFFER", 0)
CHUNK = 64 * 1024


async def test_body_is_read_as_the_view_reads(app):
    counts = []
    exchange = Exchange(body_messages(*[b"x" * CHUNK] * 20))

    @app.post("/")
    def view():
        counts.append(exchange.receives)
        first = aioflask.request.stream.read(10)
        counts.append(exchange.receives)
        rest = aioflask.request.stream.read()
        counts.append(exchange.receives)
        return str(len(first + rest))

    await call(app, http_scope(method="POST"), exchange)
    assert exchange.body == str(20 * CHUNK).encode()
    assert counts[0] == 0
    # One message for the first read, and what the watcher may hold beyond it
    # (a bounded read-ahead): far from the whole body.
    assert 1 <= counts[1] <= 2 + READ_AHEAD // CHUNK
    assert counts[1] < 20
    assert counts[2] == 20


@pytest.mark.parametrize(
    "headers", [[], [(b"content-length", b"100")]], ids=["streamed", "declared-length"]
)
async def test_disconnect_mid_body_fails_the_read(app, headers):
    seen = []

    @app.post("/")
    def view():
        try:
            aioflask.request.get_data()
        except BaseException as exc:
            seen.append(exc)
            raise
        return "unreachable"

    exchange = Exchange(
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    )
    # The app returns normally: nobody is left to answer.
    await call(app, http_scope(method="POST", headers=headers), exchange)
    assert len(seen) == 1
    assert isinstance(
        seen[0],
        asyncio.CancelledError | ClientDisconnected | werkzeug.exceptions.ClientDisconnected,
    )
    assert exchange.sent == []


async def test_disconnect_mid_body_is_not_an_application_error(app, caplog):
    errors = []

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    def on_exception(sender, exception, **extra):
        errors.append(exception)

    exchange = Exchange(
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    )
    with (
        caplog.at_level(logging.ERROR),
        aioflask.got_request_exception.connected_to(on_exception, app),
    ):
        await call(app, http_scope(method="POST"), exchange)
    assert exchange.sent == []
    assert errors == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_max_content_length_with_declared_length(app):
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    exchange = await call(
        app,
        http_scope(method="POST", headers=[(b"content-length", b"25")]),
        Exchange(body_messages(b"12345", b"12345", b"12345", b"12345", b"12345")),
    )
    assert exchange.status == 413
    assert exchange.receives == 0


async def test_max_content_length_streamed_body_read_in_blocks(app):
    limit = 100_000
    app.config["MAX_CONTENT_LENGTH"] = limit

    @app.post("/")
    def view():
        size = 0
        while block := aioflask.request.stream.read(4096):
            size += len(block)
        return str(size)

    exchange = await call(
        app,
        http_scope(method="POST"),
        Exchange(body_messages(*[b"x" * CHUNK] * 30)),
    )
    assert exchange.status == 413
    # It trips once the limit is crossed: the rest of the body (beyond the
    # bounded read-ahead) is never received.
    assert exchange.receives <= 2 + (limit + READ_AHEAD) // CHUNK
    assert exchange.receives < 30


async def test_max_content_length_small_streamed_body_is_fine(app):
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    exchange = await call(
        app, http_scope(method="POST"), Exchange(body_messages(b"12345", b"1234"))
    )
    assert exchange.status == 200
    assert exchange.body == b"123451234"


MAX_CONTENT_LENGTH_BUG = (
    "bug: a body without Content-Length is limited by Werkzeug's LimitedStream"
    " (is_max=True), whose read()/readall() stops at the limit without raising:"
    " get_data() and request.form silently get the body truncated to"
    " MAX_CONTENT_LENGTH and the view answers 200 instead of 413"
)


async def test_max_content_length_streamed_body_get_data(app):
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    exchange = await call(
        app,
        http_scope(method="POST"),
        Exchange(body_messages(b"12345", b"12345", b"12345", b"12345")),
    )
    assert exchange.status == 413


async def test_max_content_length_streamed_form(app):
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.post("/")
    def view():
        return dict(aioflask.request.form)

    exchange = await call(
        app,
        http_scope(
            method="POST", headers=[(b"content-type", b"application/x-www-form-urlencoded")]
        ),
        Exchange(body_messages(b"a=345", b"b=345", b"c=345")),
    )
    assert exchange.status == 413


# Responses


async def test_plain_response_is_start_plus_one_body_message(app):
    @app.get("/")
    def view():
        return "hello"

    exchange = await call(app, http_scope())
    start, body = exchange.sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert (b"content-length", b"5") in start["headers"]
    assert (b"content-type", b"text/html; charset=utf-8") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"hello", "more_body": False}


async def test_headers_are_lowercase_bytes(app):
    @app.get("/")
    def view():
        return "x", 201, [("X-Custom", "caf\u00e9"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]

    exchange = await call(app, http_scope())
    headers = exchange.start["headers"]
    assert exchange.status == 201
    assert (b"x-custom", "caf\u00e9".encode("latin-1")) in headers
    assert [v for k, v in headers if k == b"set-cookie"] == [b"a=1", b"b=2"]
    for name, value in headers:
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        assert name == name.lower()


async def test_content_length_response_ends_with_its_last_chunk(app):
    @app.get("/")
    def view():
        # A list: Werkzeug knows the length (Content-Length: 6).
        return aioflask.Response(["ab", "cd", "ef"])

    exchange = await call(app, http_scope())
    assert exchange.headers["content-length"] == "6"
    assert exchange.sent[1:] == [
        {"type": "http.response.body", "body": b"ab", "more_body": True},
        {"type": "http.response.body", "body": b"cd", "more_body": True},
        {"type": "http.response.body", "body": b"ef", "more_body": False},
    ]


async def test_content_length_response_is_cut_at_the_declared_length(app):
    closed = []

    def generate():
        try:
            yield b"abc"
            yield b"defgh"
            yield b"never"
        finally:
            closed.append(True)

    @app.get("/")
    def view():
        return aioflask.Response(generate(), headers={"Content-Length": "5"})

    exchange = await call(app, http_scope())
    assert exchange.sent[1:] == [
        {"type": "http.response.body", "body": b"abc", "more_body": True},
        {"type": "http.response.body", "body": b"de", "more_body": False},
    ]
    assert closed == [True]


async def test_streaming_response_sends_each_chunk_as_produced(app):
    exchange = Exchange()
    seen_before_chunk = []

    def generate():
        for chunk in (b"one", b"", b"two", b"three"):
            seen_before_chunk.append(len(exchange.sent))
            yield chunk

    @app.get("/")
    def view():
        return aioflask.Response(generate())

    await call(app, http_scope(), exchange)
    assert "content-length" not in exchange.headers
    assert exchange.sent[1:] == [
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"three", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]
    # Nothing is sent before the first chunk (the start goes with it); each
    # chunk is sent before the next one is produced (empty chunks are skipped).
    assert seen_before_chunk == [0, 2, 2, 3]


async def test_start_is_sent_with_the_first_chunk(app):
    exchange = Exchange()
    release = asyncio.Event()

    def generate():
        await_(release.wait())
        yield b"first"

    @app.get("/")
    def view():
        return aioflask.Response(generate())

    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.sleep(0.02)
    assert exchange.sent == []
    release.set()
    await task
    assert [m["type"] for m in exchange.sent] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]


async def test_empty_streaming_response(app):
    @app.get("/")
    def view():
        return aioflask.Response(iter([]))

    exchange = await call(app, http_scope())
    assert exchange.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_head_sends_no_body(app):
    @app.get("/")
    def view():
        return "hello"

    exchange = await call(app, http_scope(method="HEAD"))
    start, body = exchange.sent
    assert start["status"] == 200
    assert (b"content-length", b"5") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_head_with_streaming_body_sends_no_body_and_closes_it(app):
    log = []

    def generate():
        try:
            log.append("started")
            yield b"chunk"
        finally:
            log.append("closed")

    @app.get("/")
    def view():
        response = aioflask.Response(generate())
        response.call_on_close(lambda: log.append("response closed"))
        return response

    exchange = await call(app, http_scope(method="HEAD"))
    assert exchange.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]
    # The body is never produced, and the response is closed.
    assert log == ["response closed"]


async def test_send_file_streams_in_blocks(app, tmp_path):
    data = os.urandom(FILE_CHUNK_SIZE * 2 + 100)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    @app.get("/")
    def view():
        return aioflask.send_file(path)

    exchange = await call(app, http_scope())
    assert exchange.status == 200
    assert exchange.headers["content-length"] == str(len(data))
    bodies = exchange.bodies
    assert [len(m["body"]) for m in bodies] == [
        FILE_CHUNK_SIZE,
        FILE_CHUNK_SIZE,
        100,
    ]
    assert [m["more_body"] for m in bodies] == [True, True, False]
    assert exchange.body == data


# serve_http with plain WSGI applications


class Body:
    """A WSGI response iterable that records close()."""

    def __init__(self, chunks, fail_at=None):
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("body failed")
            yield chunk

    def close(self):
        self.closed += 1


def wsgi_app(body, status="200 OK", headers=()):
    def app(environ, start_response):
        start_response(status, list(headers))
        return body

    return app


async def test_close_is_called_after_a_complete_response():
    body = Body([b"a", b"b"])
    exchange = Exchange()
    await serve_http(wsgi_app(body), http_scope(), exchange.receive, exchange.send)
    assert exchange.body == b"ab"
    assert body.closed == 1


async def test_close_is_called_when_the_iterable_raises_midway():
    body = Body([b"a", b"b", b"c"], fail_at=1)
    exchange = Exchange()
    with pytest.raises(RuntimeError, match="body failed"):
        await serve_http(wsgi_app(body), http_scope(), exchange.receive, exchange.send)
    assert body.closed == 1
    assert exchange.status == 200
    assert exchange.body == b"a"


async def test_close_is_called_for_head_and_for_content_length_responses():
    body = Body([b"a", b"b"])
    exchange = Exchange()
    await serve_http(wsgi_app(body), http_scope(method="HEAD"), exchange.receive, exchange.send)
    assert body.closed == 1
    assert exchange.body == b""

    body = Body([b"abc", b"def"])
    exchange = Exchange()
    app = wsgi_app(body, headers=[("Content-Length", "3")])
    await serve_http(app, http_scope(), exchange.receive, exchange.send)
    assert body.closed == 1
    assert exchange.bodies == [{"type": "http.response.body", "body": b"abc", "more_body": False}]


async def test_exception_before_the_first_chunk_propagates_with_nothing_sent():
    body = Body([b"a"], fail_at=0)
    exchange = Exchange()
    with pytest.raises(RuntimeError, match="body failed"):
        await serve_http(wsgi_app(body), http_scope(), exchange.receive, exchange.send)
    # The server can still answer 500.
    assert exchange.sent == []
    assert body.closed == 1


async def test_exception_in_flask_body_before_first_chunk_propagates(app):
    def generate():
        raise RuntimeError("generator failed")
        yield b"never"

    @app.get("/")
    def view():
        return aioflask.Response(generate())

    exchange = Exchange()
    with pytest.raises(RuntimeError, match="generator failed"):
        await call(app, http_scope(), exchange)
    assert exchange.sent == []


async def test_propagated_view_exception_reaches_the_server_with_nothing_sent(app):
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/")
    async def view():
        await asyncio.sleep(0)
        raise LookupError("view failed")

    exchange = Exchange()
    with pytest.raises(LookupError, match="view failed"):
        await call(app, http_scope(), exchange)
    assert exchange.sent == []


async def test_app_that_never_calls_start_response():
    def app(environ, start_response):
        return [b"x"]

    exchange = Exchange()
    with pytest.raises(RuntimeError, match="did not call start_response"):
        await serve_http(app, http_scope(), exchange.receive, exchange.send)
    assert exchange.sent == []


async def test_start_response_called_twice():
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("500 Error", [])
        return [b""]

    exchange = Exchange()
    with pytest.raises(RuntimeError, match="twice"):
        await serve_http(app, http_scope(), exchange.receive, exchange.send)


async def test_start_response_with_exc_info_before_the_body_replaces_the_status():
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("oops")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("X-Second", "1")], sys.exc_info())
        return [b"error page"]

    exchange = Exchange()
    await serve_http(app, http_scope(), exchange.receive, exchange.send)
    assert exchange.status == 500
    assert exchange.headers == {"x-second": "1"}
    assert exchange.body == b"error page"


async def test_start_response_with_exc_info_after_the_body_reraises():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise ValueError("late error")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b""]

    exchange = Exchange()
    with pytest.raises(ValueError, match="late error"):
        await serve_http(app, http_scope(), exchange.receive, exchange.send)
    assert exchange.status == 200
    assert exchange.body == b"partial"


async def test_legacy_write_callable():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"written ")
        write(b"")
        return [b"returned"]

    exchange = Exchange()
    await serve_http(app, http_scope(), exchange.receive, exchange.send)
    assert exchange.sent[1:] == [
        {"type": "http.response.body", "body": b"written ", "more_body": True},
        {"type": "http.response.body", "body": b"returned", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


async def test_legacy_write_with_head_sends_no_body():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"written")
        return []

    exchange = Exchange()
    await serve_http(app, http_scope(method="HEAD"), exchange.receive, exchange.send)
    assert exchange.body == b""
    assert exchange.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_start_response_called_on_first_iteration():
    def app(environ, start_response):
        start_response("204 No Content", [])
        yield b""

    for method in ("GET", "HEAD"):
        exchange = Exchange()
        await serve_http(app, http_scope(method=method), exchange.receive, exchange.send)
        assert exchange.status == 204
        assert exchange.body == b""


# Client disconnect


async def run_until_first_chunk_then_disconnect(app, exchange, path="/"):
    task = asyncio.ensure_future(call(app, http_scope(path), exchange))
    await asyncio.wait_for(exchange.first_body.wait(), 2)
    exchange.disconnect()
    # The app call returns normally: no exception for the server.
    await asyncio.wait_for(task, 2)


def infinite_sync_stream(log):
    try:
        while True:
            yield b"tick"
            await_(asyncio.sleep(0.005))
    finally:
        log.append("sync generator closed")


async def infinite_async_stream(log):
    try:
        while True:
            yield b"tick"
            await asyncio.sleep(0.005)
    finally:
        log.append("async generator closed")


async def test_disconnect_closes_a_streaming_sync_generator(app):
    log = []

    @app.get("/")
    def view():
        return aioflask.Response(infinite_sync_stream(log))

    # receive() blocks until the client goes away.
    await run_until_first_chunk_then_disconnect(app, Exchange([]))
    assert log == ["sync generator closed"]


async def test_disconnect_closes_a_streaming_async_generator(app):
    log = []

    @app.get("/")
    async def view():
        return infinite_async_stream(log)

    await run_until_first_chunk_then_disconnect(app, Exchange([]))
    assert log == ["async generator closed"]


async def wait_to_be_cancelled(started, log):
    """A view's wait that only a cancellation ends (logged as "cancelled")."""
    started.set()
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


async def test_disconnect_cancels_an_awaiting_view(app):
    log = []
    started = asyncio.Event()

    @app.get("/")
    async def view():
        await wait_to_be_cancelled(started, log)

    @app.teardown_request
    def teardown(exc):
        log.append(f"teardown {type(exc).__name__}")

    exchange = Exchange([])
    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.wait_for(started.wait(), 2)
    exchange.disconnect()
    await asyncio.wait_for(task, 2)
    assert log == ["cancelled", "teardown CancelledError"]
    assert exchange.sent == []


async def test_disconnect_after_a_body_that_kept_the_view_waiting_cancels_it(app):
    # While the view waits for its own body, that read watches for the client;
    # once the body is in, a later wait is watched too.
    log = []
    started = asyncio.Event()

    @app.post("/")
    async def view():
        log.append(aioflask.request.get_data())
        await wait_to_be_cancelled(started, log)

    class SlowBody(Exchange):
        body_ready = asyncio.Event()

        async def receive(self):
            if self.receives == 0:
                self.receives += 1
                await self.body_ready.wait()
                return {"type": "http.request", "body": b"late", "more_body": False}
            return await super().receive()

    exchange = SlowBody([])
    task = asyncio.ensure_future(call(app, http_scope(method="POST"), exchange))
    await asyncio.sleep(0.01)
    exchange.body_ready.set()
    await asyncio.wait_for(started.wait(), 2)
    exchange.disconnect()
    await asyncio.wait_for(task, 2)
    assert log == [b"late", "cancelled"]
    assert exchange.sent == []


async def test_a_view_that_waits_on_after_its_body_read_saw_the_disconnect_is_cancelled(app):
    log = []
    started = asyncio.Event()

    @app.post("/")
    async def view():
        try:
            aioflask.request.get_data()
        except werkzeug.exceptions.ClientDisconnected:
            log.append("read failed")
        await wait_to_be_cancelled(started, log)

    exchange = Exchange([{"type": "http.request", "body": b"ab", "more_body": True}])
    headers = [(b"content-length", b"10")]
    task = asyncio.ensure_future(call(app, http_scope(method="POST", headers=headers), exchange))
    await asyncio.sleep(0.01)
    exchange.disconnect()
    await asyncio.wait_for(task, 2)
    assert log == ["read failed", "cancelled"]


async def test_disconnect_cancels_only_its_own_request(app):
    @app.get("/slow")
    async def slow():
        await asyncio.sleep(0.1)
        return "slow done"

    gone = Exchange([])
    stays = Exchange([])
    first = asyncio.ensure_future(call(app, http_scope("/slow"), gone))
    second = asyncio.ensure_future(call(app, http_scope("/slow"), stays))
    await asyncio.sleep(0.02)
    gone.disconnect()
    await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert gone.sent == []
    assert stays.body == b"slow done"


async def test_outer_cancellation_is_not_swallowed(app):
    @app.get("/")
    async def view():
        await asyncio.sleep(30)

    exchange = Exchange([])
    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def cancel_and_wait(task):
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def test_disconnect_after_complete_request_cancels_an_awaiting_view(app):
    log = []
    started = asyncio.Event()

    @app.get("/")
    async def view():
        await wait_to_be_cancelled(started, log)

    # Like a real server: the (empty) request body first, then, much later,
    # the disconnect.
    exchange = Exchange()
    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.wait_for(started.wait(), 2)
    await asyncio.sleep(0.01)
    exchange.disconnect()
    await asyncio.wait({task}, timeout=0.5)
    observed = list(log)
    await cancel_and_wait(task)
    assert observed == ["cancelled"]


async def test_disconnect_after_complete_request_closes_a_stream(app):
    log = []

    @app.get("/")
    async def view():
        return infinite_async_stream(log)

    exchange = Exchange()
    task = asyncio.ensure_future(call(app, http_scope(), exchange))
    await asyncio.wait_for(exchange.first_body.wait(), 2)
    exchange.disconnect()
    await asyncio.wait({task}, timeout=0.5)
    observed = list(log)
    await cancel_and_wait(task)
    assert observed == ["async generator closed"]


@pytest.mark.parametrize("waits", [False, True])
async def test_a_request_is_freed_without_the_cycle_collector(waits):
    # Reference counting frees a request's objects as soon as it ends: with
    # hundreds of requests in flight, garbage left in reference cycles makes
    # the cycle collector walk them all, again and again.
    connections = []

    def wsgi(environ, start_response):
        connections.append(weakref.ref(environ[HTTPConnection.environ_key]))
        if waits:
            await_(asyncio.sleep(0))  # the disconnect watch starts
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    exchange = Exchange()
    gc.collect()
    gc.disable()
    try:
        await serve_http(wsgi, http_scope(), exchange.receive, exchange.send)
        assert exchange.body == b"ok"
        assert connections[0]() is None
    finally:
        gc.enable()


# The disconnect watch: the server's receive() stepped by hand, no task.


def waiting_wsgi(log, started=None):
    """A WSGI app that waits on the loop (so the watch starts), then answers."""

    def wsgi(environ, start_response):
        if started is not None:
            started.set()
        try:
            await_(asyncio.sleep(30 if started is not None else 0))
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    return wsgi


async def test_the_disconnect_watch_runs_no_task():
    log = []
    started = asyncio.Event()
    exchange = Exchange()
    before = len(asyncio.all_tasks())
    task = asyncio.ensure_future(
        serve_http(waiting_wsgi(log, started), http_scope(), exchange.receive, exchange.send)
    )
    await asyncio.wait_for(started.wait(), 2)
    await asyncio.sleep(0.01)
    assert exchange.receives == 2  # the request, then the watch's pending call
    assert len(asyncio.all_tasks()) == before + 1  # the request's own task only
    exchange.disconnect()
    await asyncio.wait_for(task, 2)
    assert log == ["cancelled"]


async def test_the_watch_cancels_the_pending_receive_as_the_request_ends():
    log = []
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        try:
            await asyncio.Event().wait()
        finally:
            log.append("receive ended")

    exchange = Exchange()
    await serve_http(waiting_wsgi(log), http_scope(), receive, exchange.send)
    assert exchange.body == b"ok"
    assert log == ["receive ended"]  # not left to a later loop iteration


async def test_a_disconnect_there_when_the_request_first_waits_cancels_it():
    log = []
    started = asyncio.Event()
    exchange = Exchange([*body_messages(), {"type": "http.disconnect"}])
    await asyncio.wait_for(
        serve_http(waiting_wsgi(log, started), http_scope(), exchange.receive, exchange.send), 2
    )
    assert log == ["cancelled"]
    assert exchange.sent == []


async def test_the_watch_steps_a_receive_that_yields_to_the_loop():
    log = []
    started = asyncio.Event()
    exchange = Exchange()

    async def receive():
        await asyncio.sleep(0)  # a bare yield to the loop, then a future
        return await exchange.receive()

    task = asyncio.ensure_future(
        serve_http(waiting_wsgi(log, started), http_scope(), receive, exchange.send)
    )
    await asyncio.wait_for(started.wait(), 2)
    await asyncio.sleep(0.01)
    exchange.disconnect()
    await asyncio.wait_for(task, 2)
    assert log == ["cancelled"]


async def test_a_receive_that_fails_in_the_watch_is_reported_and_the_request_goes_on():
    first = True
    reported = []

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0)
        raise RuntimeError("the server broke")

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
    try:
        exchange = Exchange()

        def wsgi(environ, start_response):
            await_(asyncio.sleep(0.01))
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        await serve_http(wsgi, http_scope(), receive, exchange.send)
    finally:
        loop.set_exception_handler(None)
    assert exchange.body == b"ok"
    assert [str(exc) for exc in reported] == ["the server broke"]


async def test_a_receive_that_fails_at_once_in_the_watch_is_reported_and_the_request_goes_on():
    calls = 0
    reported = []

    async def receive():
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        raise RuntimeError("the server broke at once")  # no yield: the watch's first step

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
    try:
        exchange = Exchange()
        await serve_http(waiting_wsgi([]), http_scope(), receive, exchange.send)
    finally:
        loop.set_exception_handler(None)
    assert exchange.body == b"ok"
    assert calls == 2
    assert [str(exc) for exc in reported] == ["the server broke at once"]


async def test_the_watch_queues_the_messages_a_receive_returns_at_once():
    # Each receive() is done without waiting until the body is complete: the
    # watch queues them for the reader, then waits for a disconnect.
    exchange = Exchange(body_messages(b"one ", b"two"))
    started = asyncio.Event()

    def wsgi(environ, start_response):
        await_(asyncio.sleep(0))  # the watch starts, and takes both messages
        started.set()
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    await serve_http(wsgi, http_scope(), exchange.receive, exchange.send)
    assert started.is_set()
    assert exchange.body == b"one two"


async def test_the_body_length_is_werkzeugs_content_length(app):
    # Read from the environ, as Werkzeug reads it from the headers: chunked
    # wins over a Content-Length (the body streams to its end), a bad or
    # negative length is 0, and a declared length reads that many bytes.
    @app.post("/")
    def view():
        data = aioflask.request.get_data()
        return {"length": aioflask.request.content_length, "data": data.decode()}

    # (Werkzeug 3.1.0 takes only "chunked" alone as chunked; later versions any list with it.)
    chunked = get_content_length("3", "gzip, chunked")
    cases = [
        (
            [(b"content-length", b"3"), (b"transfer-encoding", b"gzip, chunked")],
            chunked,
            "abcdef" if chunked is None else "abc",
        ),
        ([(b"content-length", b"3")], 3, "abc"),
        ([(b"content-length", b"-3")], 0, ""),
        ([(b"content-length", b"x")], 0, ""),
        ([], None, "abcdef"),
    ]
    for headers, length, data in cases:
        exchange = await call(
            app,
            http_scope(method="POST", headers=headers),
            Exchange(body_messages(b"abc", b"def")),
        )
        assert exchange.status == 200, headers
        assert json.loads(exchange.body) == {"length": length, "data": data}, headers


async def test_a_request_class_content_length_is_used(app):
    class Request(aioflask.Request):
        @property
        def content_length(self):
            return 2

    app.request_class = Request

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    exchange = await call(
        app,
        http_scope(method="POST", headers=[(b"content-length", b"3")]),
        Exchange(body_messages(b"abc")),
    )
    assert exchange.body == b"ab"


async def test_replaced_request_headers_give_the_body_length(app):
    from werkzeug.datastructures import Headers

    @app.before_request
    def replace_headers():
        aioflask.request.headers = Headers({"Content-Length": "2"})

    @app.post("/")
    def view():
        return aioflask.request.get_data()

    exchange = await call(
        app,
        http_scope(method="POST", headers=[(b"content-length", b"3")]),
        Exchange(body_messages(b"abc")),
    )
    assert exchange.body == b"ab"
