"""Response.__call__: Werkzeug's WSGI response, with less work for the common case."""

from __future__ import annotations

import flask
import pytest
import werkzeug.wrappers
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import ClosingIterator

import aioflask
from aioflask.wrappers import Response


def responses():
    """(name, response factory) pairs covering every branch of get_wsgi_headers."""

    def generator():
        yield b"a"
        yield "b"

    return [
        ("bytes", lambda: Response(b"hello")),
        ("str", lambda: Response("héllo", headers={"X-A": "1"})),
        ("json", lambda: flask.jsonify(ok=True)),
        ("list of str", lambda: Response(["a", "bc"])),
        ("no auto length", lambda: _set(Response(b"x"), automatically_set_content_length=False)),
        ("stream", lambda: Response(generator())),
        ("passthrough", lambda: Response([b"raw"], direct_passthrough=True)),
        ("204", lambda: Response(b"", status=204)),
        ("304", lambda: Response(b"x", status=304, headers={"ETag": "1", "Expires": "0"})),
        ("redirect", lambda: flask.redirect("/é")),
        ("content-location", lambda: Response(b"x", headers={"Content-Location": "/é"})),
        ("declared length", lambda: Response(b"xyz", headers={"Content-Length": "3"})),
        ("custom status", lambda: Response(b"x", status="299 Fine")),
    ]


def _set(response, **attributes):
    for name, value in attributes.items():
        setattr(response, name, value)
    return response


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("name", "make"), responses())
def test_same_wsgi_response_as_werkzeug(name, make, method):
    app = aioflask.Flask(__name__)
    environ = EnvironBuilder(path="/a/b", method=method).get_environ()
    results = []
    for call in (Response.__call__, werkzeug.wrappers.Response.__call__):
        started = []
        with app.test_request_context(environ_overrides=environ):
            response = make()
        body = call(response, environ, lambda *args, started=started: started.append(args))
        try:
            results.append((started, [bytes(chunk) for chunk in body]))
        finally:
            getattr(body, "close", lambda: None)()
    assert results[0] == results[1], name


def serve(app, make, method="GET"):
    @app.route("/", methods=["GET", "POST"])
    def view():
        return make()

    client = app.test_client()
    return client.open("/", method=method)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize(("name", "make"), responses())
def test_same_http_response_as_flask(name, make, method):
    ours = serve(aioflask.Flask(__name__), make, method)
    theirs = serve(flask.Flask(__name__), make, method)
    assert ours.status_code == theirs.status_code, name  # ASGI sends no reason phrase
    # ASGI sends header names in lowercase.
    expected = [(key.lower(), value) for key, value in theirs.headers.to_wsgi_list()]
    assert ours.headers.to_wsgi_list() == expected, name
    assert ours.data == theirs.data, name


def spied_app(monkeypatch):
    """An app whose responses record the body Response.__call__ returned."""
    returned = []
    original = Response.__call__

    def spy(self, environ, start_response):
        body = original(self, environ, start_response)
        returned.append(body)
        return body

    monkeypatch.setattr(Response, "__call__", spy)
    app = aioflask.Flask(__name__)
    closed = []

    @app.route("/")
    def index():
        response = Response(b"fast")
        response.call_on_close(lambda: closed.append(True))
        return response

    return app, returned, closed


def test_a_plain_response_skips_the_closing_iterator(monkeypatch):
    app, returned, closed = spied_app(monkeypatch)
    response = app.test_client().get("/")
    assert response.data == b"fast"
    assert response.headers["Content-Length"] == "4"
    assert not isinstance(returned[0], ClosingIterator)
    assert closed == [True]


def test_middleware_takes_werkzeug_s_way(monkeypatch):
    app, returned, closed = spied_app(monkeypatch)
    wsgi_app = app.wsgi_app
    seen = []

    def middleware(environ, start_response):
        body = wsgi_app(environ, start_response)
        seen.append(body)
        return body

    app.wsgi_app = middleware
    response = app.test_client().get("/")
    assert response.data == b"fast"
    assert isinstance(returned[0], ClosingIterator)
    assert seen == returned
    assert closed == [True]


def test_a_werkzeug_response_subclass_is_sent_as_werkzeug_sends_it():
    class Plain(werkzeug.wrappers.Response):
        pass

    class Overriding(Response):
        def get_app_iter(self, environ):
            return [b"y"]

    app = aioflask.Flask(__name__)
    app.add_url_rule("/plain", "plain", lambda: Plain(b"plain"))
    app.add_url_rule("/overriding", "overriding", lambda: Overriding(b"x"))
    client = app.test_client()
    assert client.get("/plain").data == b"plain"
    assert client.get("/overriding").data == b"y"


def test_a_connection_with_its_own_start_response_gets_the_wsgi_headers():
    from aioflask.core.http import HTTPConnection

    class Stamping(HTTPConnection):
        def start_response(self, status, headers, exc_info=None):
            return super().start_response(status, [*headers, ("X-Stamp", "1")], exc_info)

    app = aioflask.Flask(__name__)
    app.asgi_http_class = Stamping
    app.add_url_rule("/", "index", lambda: {"ok": True})
    response = app.test_client().get("/")
    assert response.json == {"ok": True}
    assert response.headers["X-Stamp"] == "1"
