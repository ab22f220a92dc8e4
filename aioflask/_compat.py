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
``flask.json.provider.JSONProvider._app`` and             none (a provider's app and argument
``_prepare_response_obj`` (a view's ``dict`` or ``list``  handling are Flask's private parts)
as JSON without ``json.dumps`` per response)
``werkzeug._reloader.run_with_reloader`` (``app.run()``    none (``werkzeug.serving.run_simple``
and ``flask aiorun`` restart the process on changes,      reloads only its own server)
as ``flask run`` does)
========================================================  ==========================================

Removed because a public way exists: Werkzeug's ``LimitedStream._pos`` and
``_stream`` (the request body keeps its own count and reference).
"""

from __future__ import annotations

from typing import Any

from flask.cli import _debug_option as debug_option
from flask.json.provider import JSONProvider

# Werkzeug's reloader (what `flask run` and Flask's app.run() use): it restarts
# the process as it was started, so a script need not be importable.
from werkzeug._reloader import run_with_reloader as run_with_reloader

from .core.bridge import await_

__all__ = [
    "AsyncDefaultModule",
    "add_cookies_to_wsgi",
    "current_object",
    "debug_option",
    "json_provider_app",
    "json_provider_is_plain",
    "request_from_builder_args",
    "run_with_reloader",
    "update_cookies_from_response",
]


def current_object(proxy: Any) -> Any:
    """The object behind a Werkzeug ``LocalProxy`` (``current_app``, ``session``)."""
    return proxy._get_current_object()


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
