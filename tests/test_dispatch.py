"""aioflask's dispatch steps give what Flask's own give, byte for byte."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import uuid

import flask
import pytest
from flask.json.provider import DefaultJSONProvider
from markupsafe import Markup

import aioflask
from aioflask import dispatch


@dataclasses.dataclass
class Point:
    x: int
    y: int


VALUES = [
    {"ok": True},
    {"b": 1, "a": [1, 2.5, None], "é": "ünï"},
    [1, "two", {"three": 3}],
    [],
    {},
    {"when": datetime.datetime(2026, 12, 4, 17, 0), "id": uuid.UUID(int=7)},
    {"price": decimal.Decimal("1.10"), "point": Point(1, 2), "html": Markup("<b>")},
    {"nan": float("nan"), "inf": float("inf")},
]


def _response(app, rv):
    with app.test_request_context("/"):
        try:
            response = app.make_response(rv)
        except Exception as e:
            return app.response_class, type(e), str(e)
        return type(response), response.status, list(response.headers), response.get_data()


def _pair(configure=None):
    apps = flask.Flask(__name__), aioflask.Flask(__name__)
    for app in apps:
        if configure is not None:
            configure(app)
    return apps


def _same(configure=None, values=VALUES):
    plain, aio = _pair(configure)
    for value in values:
        _, *flask_rest = _response(plain, value)
        aio_type, *aio_rest = _response(aio, value)
        assert aio_rest == flask_rest, value
        assert aio_type is aio.response_class


def test_json_responses_are_flasks():
    _same()


@pytest.mark.parametrize(
    "settings",
    [
        {"compact": False},
        {"compact": True},
        {"sort_keys": False},
        {"ensure_ascii": False},
        {"mimetype": "application/vnd.api+json"},
        {"default": staticmethod(lambda o: repr(o))},
    ],
)
def test_provider_settings_are_read_per_response(settings):
    def configure(app):
        for name, value in settings.items():
            if isinstance(value, staticmethod):
                value = value.__func__
            setattr(app.json, name, value)

    _same(configure)


def test_the_default_provider_does_not_call_json_dumps(monkeypatch):
    def dumps(*args, **kwargs):
        raise AssertionError("json.dumps called")

    plain, aio = _pair()
    monkeypatch.setattr(json, "dumps", dumps)
    assert _response(aio, {"a": 1})[3] == b'{"a":1}\n'
    assert _response(plain, {"a": 1})[1:] == (AssertionError, "json.dumps called")
    aio.json = Provider(aio)
    assert _response(aio, {"a": 1})[1:] == (AssertionError, "json.dumps called")


def test_debug_mode_indents():
    def configure(app):
        app.debug = True

    _same(configure)
    _, aio = _pair(configure)
    assert _response(aio, {"a": 1})[3] == b'{\n  "a": 1\n}\n'
    aio.debug = False
    assert _response(aio, {"a": 1})[3] == b'{"a":1}\n'


def test_settings_changed_between_responses():
    _, aio = _pair()
    assert _response(aio, {"b": 1, "a": 2})[3] == b'{"a":2,"b":1}\n'
    aio.json.sort_keys = False
    assert _response(aio, {"b": 1, "a": 2})[3] == b'{"b":1,"a":2}\n'


def test_errors_are_flasks():
    circular: dict[str, object] = {}
    circular["self"] = circular
    values = [{"x": object()}, circular, {1: "a", "b": 2}]
    _same(values=values)
    _, aio = _pair()
    assert [_response(aio, value)[1] for value in values] == [TypeError, ValueError, TypeError]
    # An error leaves nothing behind for the next response (the encoder is shared).
    shared = {"a": [1]}
    assert _response(aio, {"x": shared, "y": shared})[3] == b'{"x":{"a":[1]},"y":{"a":[1]}}\n'


class Provider(DefaultJSONProvider):
    def dumps(self, obj, **kwargs):
        return json.dumps({"wrapped": obj}, **kwargs)


class Callable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self, o):
        return "called"


@pytest.mark.parametrize(
    "configure",
    [
        lambda app: setattr(app, "json", Provider(app)),
        lambda app: setattr(app.json, "default", Callable()),
        lambda app: setattr(app, "response_class", type("R", (app.response_class,), {})),
    ],
    ids=["provider subclass", "unhashable default", "response class"],
)
def test_what_overrides_the_default_gets_its_way(configure):
    _same(configure, values=[{"x": object()}, {"a": 1}])


def test_a_provider_of_another_app_is_not_taken_for_this_one():
    plain, aio = _pair()
    other = aioflask.Flask("other")
    other.debug = True
    aio.json = other.json
    plain.json = DefaultJSONProvider(other)
    _same(values=[{"a": 1}])
    assert not dispatch._is_default_provider(aio.json, aio)


def test_tuples_and_other_bodies_go_through_flask():
    _same(values=[({"a": 1}, 201), ({"a": 1}, {"X-A": "1"}), ("text", 200), b"bytes"])


async def test_json_through_asgi():
    app = aioflask.Flask(__name__)

    @app.get("/")
    def index():
        return {"message": "Hello, World!"}

    response = await app.test_client().get("/")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == "28"
    assert response.data == b'{"message":"Hello, World!"}\n'


SIGNALS = [
    flask.appcontext_pushed,
    flask.request_started,
    flask.request_finished,
    flask.request_tearing_down,
    flask.appcontext_tearing_down,
    flask.appcontext_popped,
]


def _signal_app(cls, events):
    app = cls(__name__)

    @app.get("/")
    def index():
        # Connected during the request: heard by the sends still to come.
        if flask.request.args.get("late"):
            flask.request_finished.connect(record, app)
        return {"ok": True}

    @app.get("/fail")
    def fail():
        raise RuntimeError("fail")

    def record(sender, **kwargs):
        kw = {key: type(value).__name__ for key, value in kwargs.items()}
        events.append((sender.name if hasattr(sender, "name") else sender, kw))

    return app, record


@pytest.mark.parametrize("path", ["/", "/?late=1", "/fail", "/missing"])
def test_signals_are_sent_as_flask_sends_them(path):
    results = []
    for cls in (flask.Flask, aioflask.Flask):
        events: list[object] = []
        app, record = _signal_app(cls, events)
        client = app.test_client()
        client.get("/")  # nothing listens yet
        assert events == []
        for signal in SIGNALS if path != "/?late=1" else []:
            signal.connect(record, app)
        try:
            response = client.get(path)
            response.close()
        finally:
            for signal in SIGNALS:
                signal.disconnect(record)
        results.append((response.status_code, events))
    assert results[0] == results[1]
    assert results[1][1], "no signal heard"


async def test_async_receivers_are_awaited_through_asgi():
    app = aioflask.Flask(__name__)
    heard = []

    @app.get("/")
    def index():
        return "ok"

    async def receiver(sender, **kwargs):
        heard.append(sender)

    flask.request_started.connect(receiver, app)
    try:
        assert (await app.test_client().get("/")).data == b"ok"
    finally:
        flask.request_started.disconnect(receiver)
    assert heard == [app]


def test_a_replaced_send_is_called(monkeypatch):
    from unittest import mock

    app = aioflask.Flask(__name__)
    app.get("/")(lambda: "ok")
    with mock.patch.object(flask.request_finished, "send") as send:
        app.test_client().get("/")
    assert send.call_count == 1
    assert send.call_args.args == (app,)


def test_nothing_is_sent_without_receivers(monkeypatch):
    def send(*args, **kwargs):
        raise AssertionError("sent")

    app = aioflask.Flask(__name__)
    app.get("/")(lambda: "ok")
    for signal in SIGNALS:
        assert not signal.receivers
        monkeypatch.setattr(type(signal), "send", send)
    assert app.test_client().get("/").data == b"ok"


def _hooks_app(cls, calls):
    app = cls(__name__)
    app.secret_key = "secret"
    bp = flask.Blueprint("bp", __name__, url_prefix="/<lang>")

    @bp.url_value_preprocessor
    def pull_lang(endpoint, values):
        calls.append(("url_value", endpoint, dict(values or {})))
        flask.g.lang = values.pop("lang", None)

    for name, scaffold in (("app", app), ("bp", bp)):

        @scaffold.before_request
        def before(name=name):
            calls.append(("before", name, flask.request.endpoint))
            if flask.request.args.get("stop") == name:
                return f"stopped by {name}"

        @scaffold.after_request
        def after(response, name=name):
            calls.append(("after", name, response.status_code))
            response.headers[f"X-{name}"] = "1"
            return response

        @scaffold.teardown_request
        def teardown(exc, name=name):
            calls.append(("teardown", name, type(exc).__name__))

    @bp.route("/page", methods=["GET", "POST"])
    def page():
        @flask.after_this_request
        def late(response):
            calls.append(("after_this_request", flask.g.lang))
            return response

        flask.session["seen"] = flask.g.lang
        return {"lang": flask.g.lang}

    @bp.get("/fail")
    def fail():
        raise ValueError("fail")

    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/en/page"),
        ("GET", "/en/page?stop=app"),
        ("GET", "/en/page?stop=bp"),
        ("OPTIONS", "/en/page"),
        ("PUT", "/en/page"),
        ("GET", "/en/fail"),
        ("GET", "/missing"),
    ],
)
def test_hooks_run_as_flask_runs_them(method, path):
    results = []
    for cls in (flask.Flask, aioflask.Flask):
        calls: list[object] = []
        app = _hooks_app(cls, calls)
        response = app.test_client().open(path, method=method)
        # aioflask's client sees the headers as an ASGI server sends them.
        headers = sorted((k.lower(), v) for k, v in response.headers.items())
        results.append((response.status_code, headers, response.data, calls))
    assert results[0] == results[1]


def test_blueprints_are_read_only_for_registered_hooks(monkeypatch):
    reads = []
    original = flask.Request.blueprints

    def blueprints(self):  # type: ignore[no-untyped-def]
        reads.append(self.endpoint)
        return original.fget(self)

    monkeypatch.setattr(flask.Request, "blueprints", property(blueprints))
    app = aioflask.Flask(__name__)
    bp = flask.Blueprint("bp", __name__)
    bp.get("/x")(lambda: "x")
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/x").text == "x"
    assert reads == []  # no hook registered: nothing to look up
    calls = []
    app2 = aioflask.Flask(__name__)
    bp2 = flask.Blueprint("bp", __name__)
    bp2.get("/x")(lambda: "x")
    bp2.before_request(lambda: calls.append("bp before") and None)
    bp2.after_request(lambda r: calls.append("bp after") or r)
    bp2.teardown_request(lambda e: calls.append("bp teardown"))
    app2.register_blueprint(bp2)
    assert app2.test_client().get("/x").text == "x"
    assert calls == ["bp before", "bp after", "bp teardown"]
    assert reads == ["bp.<lambda>"] * 3  # before, after and teardown: one read each
