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


def test_werkzeug_headers_keep_their_items_in_their_list():
    from werkzeug.datastructures import Headers

    items = [("Content-Type", "text/plain"), ("Content-Length", "2")]
    headers = _compat.headers_of(list(items))
    assert headers == Headers(items)
    assert list(headers) == items
    assert headers["content-length"] == "2"
    headers["X-More"] = "1"
    assert list(headers) == [*items, ("X-More", "1")]
    assert Headers()._list == []


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


# The Flask methods _compat copies (sending each signal only when heard,
# reading the request context without its proxies), by
# the hash of their source in the Flask versions aioflask supports (3.1.x).
COPIED = {
    "Flask.full_dispatch_request": "70d46cf2d53c3b0e",
    "Flask.finalize_request": "c1bcdc5b112f8a44",
    "Flask.do_teardown_request": "8c25313693d26f09",
    "Flask.do_teardown_appcontext": "172c4f5e8ac14bf0",
    "AppContext.push": "744ad6afc2b258f4",
    "AppContext.pop": "906da921924f8034",
    "Flask.dispatch_request": "62c7e9d15772724a",
    "Flask.preprocess_request": "74a4cb2d980d5a91",
    "Flask.process_response": "8f4afb5f9ec8c24b",
}


def test_the_flask_methods_copied_are_unchanged():
    import hashlib
    import inspect

    import flask.ctx
    import pytest

    import aioflask

    owners = {"Flask": flask.Flask, "AppContext": flask.ctx.AppContext}
    for name, digest in COPIED.items():
        owner, method = name.split(".")
        source = inspect.getsource(getattr(owners[owner], method))
        assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
            f"Flask's {name} changed: update its copy in aioflask/_compat.py"
        )
    for name in ("_got_first_request", "teardown_request_funcs", "teardown_appcontext_funcs"):
        assert hasattr(flask.Flask(__name__), name)
    context = flask.Flask(__name__).app_context()
    assert context._cv_tokens == []
    with flask.Flask(__name__).test_request_context() as request_context:
        assert _compat._request_ctx() is request_context
        assert request_context._after_request_functions == []
        assert request_context._session is not None
    outside = []
    for app in (flask.Flask(__name__), aioflask.Flask(__name__)):
        with pytest.raises(RuntimeError) as info:
            app.preprocess_request()
        outside.append(str(info.value))
    assert outside[0] == outside[1]
    assert _compat._CTX_SENTINEL is flask.ctx._sentinel
    assert _compat._APP_SENTINEL is flask.sansio.scaffold._sentinel
    assert flask.Flask.do_teardown_request.__defaults__ == (_compat._APP_SENTINEL,)
    assert flask.ctx.AppContext.pop.__defaults__ == (_compat._CTX_SENTINEL,)


def test_aioflask_uses_the_copies():
    import aioflask

    app = aioflask.Flask(__name__)
    for method in (
        "full_dispatch_request",
        "finalize_request",
        "do_teardown_request",
        "dispatch_request",
        "preprocess_request",
        "process_response",
    ):
        assert getattr(type(app), method) is getattr(_compat.DispatchSignals, method)
    assert type(app.app_context()).push is _compat.AppContextSignals.push


def test_the_flask_request_limit_copied_is_unchanged():
    import hashlib
    import inspect

    import aioflask

    source = inspect.getsource(flask.Request.max_content_length.fget)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "9a5760c214e021c8", (
        "Flask's Request.max_content_length changed: update its copy in aioflask/_compat.py"
    )
    assert flask.Request._max_content_length is None
    assert aioflask.Flask.request_class.max_content_length is _compat.AppLimits.max_content_length


def test_the_request_limit_is_flasks():
    import aioflask

    app = aioflask.Flask(__name__)
    request_class = app.request_class
    environ = werkzeug.test.EnvironBuilder().get_environ()
    # Outside an app context: Werkzeug's default, as Flask's.
    assert request_class(environ).max_content_length is None
    assert request_class(environ).max_content_length == flask.Request(environ).max_content_length
    with app.app_context():
        assert request_class(environ).max_content_length is None
        app.config["MAX_CONTENT_LENGTH"] = 100
        assert request_class(environ).max_content_length == 100
        request = request_class(environ)
        request.max_content_length = 5  # this request's own limit
        assert request.max_content_length == 5
        assert request_class(environ).max_content_length == 100


# The Flask and Jinja code that aioflask's templates copy or reproduce
# (templating.py: Context.call, Template.new_context; _compat.py: the
# render functions and update_template_context), by the hash of the body's
# code, docstring and annotations aside (ast.unparse: the same for Jinja
# 3.1.2 to 3.1.6, which differ in annotations only), in the supported versions.
TEMPLATE_CODE = {
    "jinja2.runtime.Context.call": {"ebc4189482c8b4c5"},
    # (The second pair: Python 3.10, whose ast.unparse writes the same code
    # differently; Context.__init__ with Jinja 3.1.6 and 3.1.2.)
    "jinja2.runtime.Context.__init__": {
        "e335cd07c63ae595",
        "c4b6b7386d4c8234",
        "cb03a1e17b55e00b",
        "3d68234738f727a8",
    },
    "jinja2.runtime.new_context": {"60da00dc0fb06c71", "e26d28402b7f350c"},
    "jinja2.environment.Template.new_context": {"f880530b664b87b2"},
    "flask.templating._render": {"2b90d0f42cc8127e"},
    "flask.templating.render_template": {"4349656fbd8e3146"},
    "flask.templating.render_template_string": {"b5fe27a6757c2895"},
    "flask.app.Flask.update_template_context": {"955d1c8de68e8ed4"},
}


def _code_digest(func):
    import ast
    import hashlib
    import inspect
    import textwrap

    node = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    code = ast.unparse(ast.Module(body=body, type_ignores=[]))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def test_the_template_code_copied_is_unchanged():
    import importlib

    for name, digests in TEMPLATE_CODE.items():
        module_name, _, attribute = name.partition(".")
        obj = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = (
                getattr(obj, part)
                if hasattr(obj, part)
                else importlib.import_module(f"{obj.__name__}.{part}")
            )
        assert _code_digest(obj) in digests, (
            f"{name} changed: update aioflask's copy (aioflask/templating.py, _compat.py)"
        )
    from jinja2.utils import _PassArg

    assert _compat.PassArg is _PassArg


def test_aioflask_renders_with_the_copies():
    import aioflask
    from aioflask import templating

    assert templating.Environment.context_class is templating.Context
    assert type(aioflask.Flask(__name__)).update_template_context is (
        _compat.DispatchSignals.update_template_context
    )
