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


# new_response: a response made from its class's template is the one the
# constructor makes.


def _state(response):
    return (
        type(response),
        response.status,
        response.status_code,
        list(response.headers),
        response.get_data(),
        response.direct_passthrough,
        sorted(vars(response)),
    )


class _Plain(Response):
    pass


class _Text(Response):
    default_mimetype = "text/plain"


class _Created(Response):
    default_status = 201


class _NoLength(Response):
    automatically_set_content_length = False


class _OwnInit(Response):
    def __init__(self, response=None, **kwargs):
        super().__init__(response, **kwargs)
        self.headers["X-Own"] = "yes"


class _OwnSetData(Response):
    def set_data(self, value):
        super().set_data(value.upper() if isinstance(value, str) else value)


@pytest.mark.parametrize("cls", [Response, _Plain, _Text, _Created, _NoLength])
@pytest.mark.parametrize("mimetype", [None, "application/json", "text/csv", "image/png"])
@pytest.mark.parametrize("body", ["", "hello", "héllo ☃", b"", b"\x00\xff bytes"])
def test_new_response_is_the_constructor_s(cls, mimetype, body):
    from aioflask.wrappers import new_response

    for _ in range(2):  # the first builds the template, the second uses it
        made = new_response(cls, body, mimetype)
        assert made is not None
        assert _state(made) == _state(cls(body, mimetype=mimetype))


class _NoType(Response):
    default_mimetype = None
    automatically_set_content_length = False


@pytest.mark.parametrize(
    "cls", [_OwnInit, _OwnSetData, _NoType, flask.Response, werkzeug.wrappers.Response]
)
def test_new_response_leaves_other_classes_to_their_constructor(cls):
    from aioflask.wrappers import new_response

    assert new_response(cls, "body") is None


def test_new_responses_share_nothing_mutable():
    from aioflask.wrappers import new_response

    first = new_response(Response, "one", "application/json")
    second = new_response(Response, "two", "application/json")
    first.headers["X-First"] = "1"
    first.call_on_close(lambda: None)
    first.set_data("changed")
    assert list(second.headers) == [("Content-Type", "application/json"), ("Content-Length", "3")]
    assert second._on_close == []
    assert second.get_data() == b"two"


def test_new_response_sees_class_attributes_changed_later():
    from aioflask.wrappers import new_response

    class Changing(Response):
        pass

    assert new_response(Changing, "x").content_type == "text/html; charset=utf-8"
    Changing.default_mimetype = "text/plain"
    Changing.automatically_set_content_length = False
    Changing.default_status = 202
    made = new_response(Changing, "x")
    assert _state(made) == _state(Changing("x"))
    assert made.status == "202 ACCEPTED"


def test_new_response_raises_what_the_constructor_raises():
    from aioflask.wrappers import new_response

    with pytest.raises(ValueError) as made:
        new_response(Response, "x", "text/plain\nX-Injected: 1")
    with pytest.raises(ValueError) as constructed:
        Response("x", mimetype="text/plain\nX-Injected: 1")
    assert str(made.value) == str(constructed.value)


@pytest.mark.parametrize("rv", ["text", "héllo", b"bytes", {"a": 1}, [1, 2]])
@pytest.mark.parametrize("response_class", [None, _Text, _OwnInit, flask.Response])
def test_make_response_of_a_string_bytes_or_json_is_flask_s(rv, response_class):
    apps = [flask.Flask(__name__), aioflask.Flask(__name__)]
    states = []
    for app in apps:
        if response_class is not None:
            app.response_class = response_class
        elif app.response_class is flask.Response:
            app.response_class = Response  # the same class on both sides
        with app.test_request_context("/"):
            for _ in range(2):
                states.append(_state(app.make_response(rv)))
    assert states[0] == states[1] == states[2] == states[3]
