"""The URL adapter of a request: the same as Flask's, its host's part cached."""

from __future__ import annotations

import itertools
import warnings

import flask
import pytest
import werkzeug.exceptions
from werkzeug.routing import Map
from werkzeug.test import EnvironBuilder

import aioflask

HOSTS = ["example.com", "sub.example.com", "EXAMPLE.com:80", "a.b.example.com:8080", "other.org"]
HOSTS += ["bücher.de".encode().decode("latin-1"), "127.0.0.1:5000", "[::1]:443", "bad host", ""]


def make(cls, server_name, subdomain_matching, host_matching, trusted):
    app = cls(
        __name__,
        static_folder=None,
        subdomain_matching=subdomain_matching,
        host_matching=host_matching,
    )
    app.config.update(SERVER_NAME=server_name, TRUSTED_HOSTS=trusted)
    return app


def bind(app, environ):
    """What create_url_adapter gives (or raises) for a request of ``environ``."""
    request = app.request_class(environ)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            adapter = app.create_url_adapter(request)
        except werkzeug.exceptions.HTTPException as e:
            return type(e), [str(w.message) for w in caught]
    fields = ("server_name", "script_name", "subdomain", "url_scheme", "path_info")
    fields += ("default_method", "query_args", "websocket")
    state = {name: getattr(adapter, name) for name in fields}
    return state, request.host, request.trusted_hosts, [str(w.message) for w in caught]


CONFIGS = list(
    itertools.product(
        [None, "example.com", "example.com:80", "example.com:8080"],
        [False, True],  # subdomain_matching
        [False, True],  # host_matching
        [None, ["example.com", ".example.com", "127.0.0.1"]],
    )
)


@pytest.mark.parametrize("config", CONFIGS)
def test_same_adapter_as_flask(config):
    host_matching = config[2]
    ours = make(aioflask.Flask, *config)
    theirs = make(flask.Flask, *config)
    for app in (ours, theirs):
        if host_matching:
            app.add_url_rule("/", "index", host="<h>")
        else:
            app.add_url_rule("/", "index")
    variants = [
        {},
        {"base_url": "https://{}/root/", "path": "/x%C3%A9/y", "query_string": "q=%20é"},
        {"headers": {"Connection": "keep-alive, Upgrade", "Upgrade": "websocket"}},
    ]
    for host, variant in itertools.product(HOSTS, variants):
        variant = dict(variant)
        base = variant.pop("base_url", "http://{}/").format(host or "localhost")
        environ = EnvironBuilder(base_url=base, method="POST", **variant).get_environ()
        if not host:
            del environ["HTTP_HOST"]
        # Twice: the second time from the cache.
        expected = bind(theirs, environ)
        assert bind(ours, environ) == expected, (host, variant)
        assert bind(ours, environ) == expected, (host, variant)


def test_the_host_is_bound_once(monkeypatch):
    app = aioflask.Flask(__name__)
    calls = []
    original = flask.Flask.create_url_adapter

    def spy(self, request):
        calls.append(request)
        return original(self, request)

    monkeypatch.setattr(flask.Flask, "create_url_adapter", spy)
    for path in ("/a", "/b?x=1", "/c"):
        environ = EnvironBuilder(base_url="http://example.com/", path=path).get_environ()
        adapter = app.create_url_adapter(app.request_class(environ))
        assert adapter.path_info == path.partition("?")[0]
        assert adapter.server_name == "example.com"
    assert len(calls) == 1

    class OwnMap(Map):
        def bind_to_environ(self, *args, **kwargs):
            return super().bind_to_environ(*args, **kwargs)

    # A map that binds its own way is bound by Flask every time.
    app.url_map = OwnMap()
    for _ in range(2):
        app.create_url_adapter(app.request_class(environ))
    assert len(calls) == 3


def test_a_mismatched_host_warns_every_time():
    app = aioflask.Flask(__name__)
    app.config["SERVER_NAME"] = "example.com"
    app.subdomain_matching = True
    environ = EnvironBuilder(base_url="http://other.org/").get_environ()
    for _ in range(2):
        with pytest.warns(UserWarning, match="doesn't match configured"):
            app.create_url_adapter(app.request_class(environ))


def test_subdomain_and_host_routing_through_asgi():
    app = aioflask.Flask(__name__, subdomain_matching=True)
    app.config.update(SERVER_NAME="example.com", TRUSTED_HOSTS=["example.com", ".example.com"])

    @app.route("/")
    def index():
        return f"index {flask.request.host}"

    @app.route("/", subdomain="<user>")
    def user(user):
        return f"user {user} {flask.url_for('index', _external=True)}"

    client = app.test_client()
    for _ in range(2):
        assert client.get("/", base_url="http://example.com").text == "index example.com"
        response = client.get("/", base_url="http://bob.example.com")
        assert response.text == "user bob http://example.com/"
        response = client.get("/", base_url="http://ann.example.com")
        assert response.text == "user ann http://example.com/"
        assert client.get("/", base_url="http://evil.org").status_code == 400
    for _ in range(2):
        with pytest.warns(UserWarning, match="doesn't match configured"):
            # Werkzeug binds the subdomain "<invalid>" (which <user> matches).
            response = client.get("/", base_url="http://example.com:81")
            assert response.text == "user <invalid> http://example.com/"
