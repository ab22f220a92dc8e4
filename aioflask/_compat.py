"""The private names of Flask, Werkzeug and Jinja that aioflask uses, in one place.

Nowhere else in the package is a private name of these libraries imported,
read or overridden. Each is checked by ``tests/test_compat.py`` against the
installed versions (the latest and, in CI, the oldest supported), so a change
fails there, loudly, and only this module changes.

========================================================  ==========================================
private name (where aioflask uses it)                     public alternative
========================================================  ==========================================
``flask.cli._debug_option`` (``flask aiorun --debug``,    none: a copy of the option would drift
the very option of ``flask run``)                         from Flask's
``werkzeug.local.LocalProxy._get_current_object``         none (documented by Werkzeug despite its
(the app and session behind ``current_app`` and           underscore)
``session``, kept past the context)
``werkzeug.test.Client._request_from_builder_args``       ``EnvironBuilder(...).get_request()``,
(the test client builds requests as Flask's does:         but without Flask's override
``FlaskClient`` overrides it with the app's config)
``werkzeug.test.Client._add_cookies_to_wsgi``             none (the cookie jar has no public way
(the jar's cookies sent with a request)                   to fill an environ)
``werkzeug.test.Client._update_cookies_from_response``    none (``set_cookie`` takes one cookie's
(``Set-Cookie`` headers into the jar)                     arguments, not a header)
``jinja2.Template._get_default_module`` and its           none (``Template.module`` calls it)
``_async`` twin (``Template.module``, and so
``get_template_attribute``, in async mode)
``flask.Request.max_content_length``, copied here         none (Flask reads the config through
reading the app context without ``current_app``: it       the ``current_app`` proxy)
uses ``_cv_app`` and ``_max_content_length``
``flask.json.provider.JSONProvider._app`` and             none (a provider's app and argument
``_prepare_response_obj`` (a view's ``dict`` or ``list``  handling are Flask's private parts)
as JSON without ``json.dumps`` per response)
``Flask.full_dispatch_request``, ``finalize_request``,    none (Flask sends its signals whether
``do_teardown_request``, ``do_teardown_appcontext`` and   anything listens or not, and reads
``AppContext.push`` / ``pop``, copied here with each      ``request`` through its proxy)
signal sent only when it has receivers; and
``dispatch_request``, ``preprocess_request`` and
``process_response`` and ``update_template_context``,
reading the request context without a proxy (and
``flask.templating._render``, copied as ``render``, its
template signals sent only when heard, for aioflask's
``render_template``): they use ``_got_first_request``,
``_cv_app``, ``_cv_request``, ``_cv_tokens``,
``_session``, ``_after_request_functions`` and the
``_sentinel`` defaults
``werkzeug._reloader.run_with_reloader`` (``app.run()``    none (``werkzeug.serving.run_simple``
and ``flask aiorun`` restart the process on changes,      reloads only its own server)
as ``flask run`` does)
``werkzeug.datastructures.Headers._list`` (a plain       none (``Headers(items)`` validates each
response built from its class's template, see             item again: ~2,500 instructions a header)
``wrappers.new_response``: headers already validated)
``jinja2.utils._PassArg`` (``Context.call`` of             none (Jinja's ``Context.call`` is the
``templating.py``: Jinja's, copied, awaiting the call's   public way; calling it from an override
result in the same frame)                                 costs a frame per call)
========================================================  ==========================================

Removed because a public way exists: Werkzeug's ``LimitedStream._pos`` and
``_stream`` (the request body keeps its own count and reference).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import chain
from typing import Any

import flask
import flask.ctx
import flask.globals
import flask.sansio.scaffold
from flask.cli import _debug_option as debug_option
from flask.globals import _cv_app, _cv_request
from flask.json.provider import JSONProvider
from flask.signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    before_render_template,
    request_finished,
    request_started,
    request_tearing_down,
    template_rendered,
)

# How Jinja marks callables that take the context, eval context or
# environment first (``@pass_context`` and the others).
from jinja2.utils import _PassArg as PassArg

# Werkzeug's reloader (what `flask run` and Flask's app.run() use): it restarts
# the process as it was started, so a script need not be importable.
from werkzeug._reloader import run_with_reloader as run_with_reloader
from werkzeug.datastructures import Headers

from .core.bridge import await_

__all__ = [
    "AppContextSignals",
    "AppLimits",
    "AsyncDefaultModule",
    "DispatchSignals",
    "PassArg",
    "add_cookies_to_wsgi",
    "current_object",
    "debug_option",
    "headers_of",
    "json_provider_app",
    "json_provider_is_plain",
    "render",
    "render_template",
    "render_template_string",
    "request_from_builder_args",
    "run_with_reloader",
    "update_cookies_from_response",
]


def current_object(proxy: Any) -> Any:
    """The object behind a Werkzeug ``LocalProxy`` (``current_app``, ``session``)."""
    return proxy._get_current_object()


def headers_of(items: list[tuple[str, str]]) -> Headers:
    """A :class:`~werkzeug.datastructures.Headers` holding ``items`` as its
    list, without validating them again: items taken from a ``Headers``
    that validated them."""
    headers = Headers()
    headers._list = items
    return headers


def json_provider_app(provider: Any) -> Any:
    """The app a JSON provider answers for (a weak proxy of it)."""
    return provider._app


def json_provider_is_plain(provider: Any) -> bool:
    """Whether the provider prepares ``response()``'s arguments as Flask's does."""
    prepare = JSONProvider._prepare_response_obj
    return type(provider)._prepare_response_obj is prepare


def request_from_builder_args(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The request a (Flask) test client would make of ``client.open``'s arguments."""
    return client._request_from_builder_args(args, kwargs)


def add_cookies_to_wsgi(client: Any, environ: dict[str, Any]) -> None:
    """Put the test client's cookies for ``environ``'s URL into it."""
    client._add_cookies_to_wsgi(environ)


def update_cookies_from_response(
    client: Any, server_name: str, path: str, headers: list[str]
) -> None:
    """Store ``Set-Cookie`` header values in the test client's jar."""
    client._update_cookies_from_response(server_name, path, headers)


class AsyncDefaultModule:
    """Mixin of a Jinja ``Template``: ``Template.module`` in async mode, on the bridge.

    Jinja builds ``Template.module`` with the private ``_get_default_module``,
    which raises in async mode (it would need ``await``); this waits through
    the bridge instead.
    """

    environment: Any

    def _get_default_module(self, ctx: Any = None) -> Any:
        if not self.environment.is_async:
            return super()._get_default_module(ctx)  # type: ignore[misc]
        return await_(self._get_default_module_async(ctx))  # type: ignore[attr-defined]


# Each signal Flask sends per request costs ~3,500 instructions through
# blinker's send() when nothing listens (six per request: about 20,000 of a
# JSON ping; the check instead ~900; benchmarks/flask_steps.py). The copies
# below of the Flask methods that send them skip the send then, and do
# everything else as Flask 3.1 does (tests/test_compat.py checks that Flask's
# methods are still the ones copied).
_CTX_SENTINEL: Any = flask.ctx._sentinel
_APP_SENTINEL: Any = flask.sansio.scaffold._sentinel

# A signal is sent when it has a receiver, or when its ``send`` was replaced
# on the signal object (``mock.patch.object(signal, "send")``); written out
# at each send, since a function call would cost most of what is saved.


def _request_ctx() -> Any:
    """What Flask's ``request_ctx`` proxy stands for (its error outside a request)."""
    ctx = _cv_request.get(None)
    return ctx if ctx is not None else flask.globals.request_ctx._get_current_object()  # type: ignore[attr-defined]


class DispatchSignals(flask.Flask):
    """Flask's methods that send request signals, sending only when heard;
    and those reading ``request`` per request, reading the request context
    itself instead of its proxies (~7,500 instructions each
    ``flask.request.x`` against ``_request_ctx().request.x``: five per
    request; benchmarks/flask_steps.py). With no hook of a kind registered,
    ``request.blueprints`` is not read for it (~3,300 instructions each)."""

    def dispatch_request(self) -> Any:
        req = _request_ctx().request
        if req.routing_exception is not None:
            self.raise_routing_exception(req)
        rule = req.url_rule
        # if we provide automatic options for this URL and the
        # request came with the OPTIONS method, reply automatically
        if getattr(rule, "provide_automatic_options", False) and req.method == "OPTIONS":
            return self.make_default_options_response()
        # otherwise dispatch to the handler for that endpoint
        view_args = req.view_args
        return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)

    def preprocess_request(self) -> Any:
        req = _request_ctx().request
        if not self.url_value_preprocessors and not self.before_request_funcs:
            return None  # (nothing registered: the loops below call nothing)
        names = (None, *reversed(req.blueprints))

        for name in names:
            if name in self.url_value_preprocessors:
                for url_func in self.url_value_preprocessors[name]:
                    req = _request_ctx().request
                    url_func(req.endpoint, req.view_args)

        for name in names:
            if name in self.before_request_funcs:
                for before_func in self.before_request_funcs[name]:
                    rv = self.ensure_sync(before_func)()

                    if rv is not None:
                        return rv

        return None

    def process_response(self, response: Any) -> Any:
        ctx = _request_ctx()

        for func in ctx._after_request_functions:
            response = self.ensure_sync(func)(response)

        funcs = self.after_request_funcs
        for name in chain(_request_ctx().request.blueprints, (None,)) if funcs else ():
            if name in self.after_request_funcs:
                for func in reversed(self.after_request_funcs[name]):
                    response = self.ensure_sync(func)(response)

        if not self.session_interface.is_null_session(ctx._session):
            self.session_interface.save_session(self, ctx._session, response)

        return response

    def full_dispatch_request(self) -> flask.Response:
        self._got_first_request = True

        try:
            if request_started.receivers or "send" in request_started.__dict__:
                request_started.send(self, _async_wrapper=self.ensure_sync)
            rv = self.preprocess_request()
            if rv is None:
                rv = self.dispatch_request()
        except Exception as e:
            rv = self.handle_user_exception(e)
        return self.finalize_request(rv)

    def finalize_request(self, rv: Any, from_error_handler: bool = False) -> flask.Response:
        response = self.make_response(rv)
        try:
            response = self.process_response(response)
            if request_finished.receivers or "send" in request_finished.__dict__:
                request_finished.send(self, _async_wrapper=self.ensure_sync, response=response)
        except Exception:
            if not from_error_handler:
                raise
            self.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def do_teardown_request(self, exc: BaseException | None = _APP_SENTINEL) -> None:
        if exc is _APP_SENTINEL:
            exc = sys.exc_info()[1]

        req = _request_ctx().request
        for name in chain(req.blueprints, (None,)) if self.teardown_request_funcs else ():
            if name in self.teardown_request_funcs:
                for func in reversed(self.teardown_request_funcs[name]):
                    self.ensure_sync(func)(exc)

        if request_tearing_down.receivers or "send" in request_tearing_down.__dict__:
            request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)

    def update_template_context(self, context: dict[str, Any]) -> None:
        names: Iterable[str | None] = (None,)

        # A template may be rendered outside a request context.
        ctx = _cv_request.get(None)
        if ctx is not None and ctx.request:
            names = chain(names, reversed(ctx.request.blueprints))

        # The values passed to render_template take precedence. Keep a
        # copy to re-apply after all context functions.
        orig_ctx = context.copy()

        for name in names:
            if name in self.template_context_processors:
                for func in self.template_context_processors[name]:
                    context.update(self.ensure_sync(func)())

        context.update(orig_ctx)

    def do_teardown_appcontext(self, exc: BaseException | None = _APP_SENTINEL) -> None:
        if exc is _APP_SENTINEL:
            exc = sys.exc_info()[1]

        for func in reversed(self.teardown_appcontext_funcs):
            self.ensure_sync(func)(exc)

        if appcontext_tearing_down.receivers or "send" in appcontext_tearing_down.__dict__:
            appcontext_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)


def render_template(template_name_or_list: Any, **context: Any) -> str:
    """Flask's ``render_template``, with the app context read without its proxy."""
    app_ctx = _cv_app.get(None)
    app = app_ctx.app if app_ctx is not None else flask.current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.get_or_select_template(template_name_or_list)
    return render(app, template, context)


def render_template_string(source: str, **context: Any) -> str:
    """Flask's ``render_template_string``, with the app context read without its proxy."""
    app_ctx = _cv_app.get(None)
    app = app_ctx.app if app_ctx is not None else flask.current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.from_string(source)
    return render(app, template, context)


def render(app: Any, template: Any, context: dict[str, Any]) -> str:
    """Flask's ``flask.templating._render``, sending its signals only when heard."""
    app.update_template_context(context)
    if before_render_template.receivers or "send" in before_render_template.__dict__:
        before_render_template.send(
            app, _async_wrapper=app.ensure_sync, template=template, context=context
        )
    rv: str = template.render(context)
    if template_rendered.receivers or "send" in template_rendered.__dict__:
        template_rendered.send(
            app, _async_wrapper=app.ensure_sync, template=template, context=context
        )
    return rv


class AppContextSignals(flask.ctx.AppContext):
    """Flask's ``AppContext.push`` and ``pop``, sending their signals only when heard."""

    def push(self) -> None:
        self._cv_tokens.append(_cv_app.set(self))
        if appcontext_pushed.receivers or "send" in appcontext_pushed.__dict__:
            appcontext_pushed.send(self.app, _async_wrapper=self.app.ensure_sync)

    def pop(self, exc: BaseException | None = _CTX_SENTINEL) -> None:
        try:
            if len(self._cv_tokens) == 1:
                if exc is _CTX_SENTINEL:
                    exc = sys.exc_info()[1]
                self.app.do_teardown_appcontext(exc)
        finally:
            ctx = _cv_app.get()
            _cv_app.reset(self._cv_tokens.pop())

        if ctx is not self:
            raise AssertionError(f"Popped wrong app context. ({ctx!r} instead of {self!r})")

        if appcontext_popped.receivers or "send" in appcontext_popped.__dict__:
            appcontext_popped.send(self.app, _async_wrapper=self.app.ensure_sync)


class AppLimits(flask.Request):
    """Flask's ``Request.max_content_length``, reading the app context itself.

    Through the ``current_app`` proxy (its ``bool`` and its ``config``, a
    failed attribute lookup on the proxy) the property cost ~13,000
    instructions, read once by every request that reads its body
    (397,158 -> 384,303, benchmarks/instructions.py --uvloop, POST 64 KiB).
    """

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length

        ctx = _cv_app.get(None)
        if ctx is None:
            return super(flask.Request, self).max_content_length

        return ctx.app.config["MAX_CONTENT_LENGTH"]  # type: ignore[no-any-return]

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value
