"""The URL adapter of a request: the same as Flask's, its host's part cached."""

from __future__ import annotations

import itertools
import warnings

import flask
import pytest
import werkzeug.exceptions
import werkzeug.routing
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


# The match of a URL without variables, remembered by aioflask's Map: the
# same rule, arguments and routing errors as Flask's, however often asked.


def add_rules(app):
    view = lambda **kwargs: "x"  # noqa: E731
    app.add_url_rule("/", "index", view)
    app.add_url_rule("/page", "page", view, methods=["GET", "POST"])
    app.add_url_rule("/dir/", "dir", view)
    app.add_url_rule("/loose", "loose", view, strict_slashes=False)
    app.add_url_rule("/user/<int:id>", "user", view)
    app.add_url_rule("/users/", "users", view, defaults={"page": 1})
    app.add_url_rule("/users/page/<int:page>", "users", view)
    app.add_url_rule("/defaults", "with_defaults", view, defaults={"lang": "en"})
    app.add_url_rule("/old", "old", view, redirect_to="/page")
    app.add_url_rule("/put-only", "put_only", view, methods=["PUT"])
    app.add_url_rule("/", "sub_index", view, subdomain="api")
    app.add_url_rule("/", "any_sub", view, subdomain="<name>")
    app.add_url_rule("/ws", "ws", view, websocket=True)


REQUESTS = [
    (path, method, host, scheme)
    for path in ["/", "/page", "/dir", "/dir/", "/loose", "/loose/", "/user/3", "/users/",
                 "/users/page/1", "/users/page/2", "/defaults", "/old", "/put-only", "//page",
                 "/page/", "/missing", "/ws"]
    for method in ["GET", "POST", "HEAD", "OPTIONS", "PUT"]
    for host in ["example.com", "api.example.com", "bob.example.com"]
    for scheme in ["http", "ws"]
]  # fmt: skip


def routed(app, path, method, host, scheme):
    """What matching the request gave: the rule, the arguments or the error."""
    with app.test_request_context(path, method=method, base_url=f"{scheme}://{host}/") as ctx:
        request = ctx.request
        error = request.routing_exception
        if error is not None:
            return (
                type(error),
                getattr(error, "new_url", None),
                getattr(error, "valid_methods", None),
            )
        args = request.view_args
        result = request.url_rule.endpoint, request.url_rule.rule, dict(args)
        args["changed"] = True  # a hook changing this request's arguments
        return result


def test_matches_are_flasks_however_often_asked():
    apps = []
    for cls in (flask.Flask, aioflask.Flask):
        app = cls(__name__, static_folder=None, subdomain_matching=True)
        app.config["SERVER_NAME"] = "example.com"
        add_rules(app)
        apps.append(app)
    theirs, ours = apps
    assert type(ours.url_map) is aioflask.routing.Map
    for request in REQUESTS:
        expected = routed(theirs, *request)
        for _ in range(3):
            assert routed(ours, *request) == expected, request
    assert ours.url_map.matches  # something was remembered


def test_a_rule_added_later_is_seen():
    apps = []
    for cls in (flask.Flask, aioflask.Flask):
        app = cls(__name__, static_folder=None)
        view = lambda **kwargs: "x"  # noqa: E731
        app.add_url_rule("/a", "first", view, strict_slashes=False)
        apps.append(app)
    answers = []
    for _ in range(2):
        expected = routed(apps[0], "/a/", "GET", "localhost", "http")
        answers.append(expected)
        for _ in range(2):
            assert routed(apps[1], "/a/", "GET", "localhost", "http") == expected
        for app in apps:
            # "/a/" matched "/a" (no strict slashes), until a rule of its own.
            app.url_map.add(werkzeug.routing.Rule("/a/", endpoint="second"))
    assert [answer[0] for answer in answers] == ["first", "second"]


def test_map_settings_changed_later_are_seen():
    apps = []
    for cls in (flask.Flask, aioflask.Flask):
        app = cls(__name__, static_folder=None)
        view = lambda **kwargs: "x"  # noqa: E731
        app.url_map.merge_slashes = False
        app.add_url_rule("/a//b", "slashes", view)
        app.add_url_rule("/c/d", "plain", view)
        app.add_url_rule("/list/", "list", view, defaults={"page": 1})
        app.add_url_rule("/list/<int:page>", "list", view)
        app.add_url_rule("/all", "list", view, defaults={"page": 1})
        apps.append(app)
    paths = ["/a//b", "/a/b", "/c//d", "/c/d", "/list/", "/list/1", "/list/2", "/all"]
    outcomes = set()
    for merge_slashes, redirect_defaults in [(False, False), (True, True), (False, True)]:
        for app in apps:
            app.url_map.merge_slashes = merge_slashes
            app.url_map.redirect_defaults = redirect_defaults
        for path in paths:
            expected = routed(apps[0], path, "GET", "localhost", "http")
            outcomes.add((path, str(expected)))
            for _ in range(2):
                assert routed(apps[1], path, "GET", "localhost", "http") == expected, path
    assert len(outcomes) > len(paths)  # the settings changed some answers


def test_a_map_of_another_class_matches_every_time(monkeypatch):
    app = aioflask.Flask(__name__, static_folder=None)
    app.url_map = Map()
    app.add_url_rule("/", "index", lambda: "x")
    calls = []
    original = werkzeug.routing.MapAdapter.match

    def spy(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(werkzeug.routing.MapAdapter, "match", spy)
    for _ in range(3):
        assert routed(app, "/", "GET", "localhost", "http")[0] == "index"
    assert len(calls) == 3
