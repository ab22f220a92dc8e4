"""Each private Flask, Werkzeug and Jinja name in ``aioflask._compat`` still works as used.

These fail, loudly and here, when a new version of a dependency renames or
changes one of them.
"""

from __future__ import annotations

import click
import flask
import flask.cli
import jinja2
import werkzeug.local
import werkzeug.test

from aioflask import _compat


def test_flask_debug_option_is_the_one_of_flask_run():
    assert isinstance(_compat.debug_option, click.Option)
    assert _compat.debug_option.name == "debug"
    assert "--debug" in _compat.debug_option.opts


def test_werkzeug_local_proxy_gives_its_current_object():
    app = flask.Flask(__name__)
    assert hasattr(werkzeug.local.LocalProxy, "_get_current_object")
    with app.app_context():
        assert _compat.current_object(flask.current_app) is app


def test_werkzeug_test_client_builds_requests_and_keeps_cookies():
    app = flask.Flask(__name__)
    client = app.test_client()
    request = _compat.request_from_builder_args(client, ("/page",), {"method": "GET"})
    assert request.path == "/page"
    assert request.method == "GET"
    _compat.update_cookies_from_response(client, "localhost", "/", ["token=abc; Path=/"])
    assert client.get_cookie("token").value == "abc"
    environ = request.environ
    _compat.add_cookies_to_wsgi(client, environ)
    assert environ["HTTP_COOKIE"] == "token=abc"


def test_jinja_template_module_goes_through_get_default_module():
    calls = []

    class Template(jinja2.Template):
        def _get_default_module(self, ctx=None):  # type: ignore[no-untyped-def]
            calls.append(ctx)
            return super()._get_default_module(ctx)

    env = jinja2.Environment()
    env.template_class = Template
    template = env.from_string("{% macro hi() %}hi{% endmacro %}")
    assert template.module.hi() == "hi"
    assert calls == [None]
    assert hasattr(jinja2.Template, "_get_default_module_async")


def test_flask_json_provider_keeps_its_app_and_prepares_response_arguments():
    from flask.json.provider import DefaultJSONProvider, JSONProvider

    app = flask.Flask(__name__)
    assert _compat.json_provider_app(app.json) == app
    assert _compat.json_provider_is_plain(app.json)
    assert JSONProvider._prepare_response_obj(app.json, ({"a": 1},), {}) == {"a": 1}

    class Provider(DefaultJSONProvider):
        def _prepare_response_obj(self, args, kwargs):  # type: ignore[no-untyped-def]
            return args

    assert not _compat.json_provider_is_plain(Provider(app))
