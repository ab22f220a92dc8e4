"""The URL adapter of a request, bound without redoing the host's work each time.

Flask's :meth:`~flask.Flask.create_url_adapter` calls
:meth:`werkzeug.routing.Map.bind_to_environ` for every request: it validates
the host (``get_host``, the trusted hosts), lowers and IDNA-encodes the
server name and works out the subdomain and scheme. None of that depends on
the path, method or query string, so :class:`URLAdapters` does it once per
distinct set of the values it depends on and builds each request's
:class:`~werkzeug.routing.MapAdapter` from the result: the same adapter,
with the same ``request.host`` and ``request.trusted_hosts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, MapAdapter
from werkzeug.wrappers import Request

from .core.caches import BoundedCache

__all__ = ["URLAdapters"]

# What bind_to_environ computed from the host: request.host, then the
# adapter's server_name, script_name, subdomain and url_scheme.
_Bound = tuple[str, str, str, "str | None", str]


class URLAdapters:
    """Flask's ``create_url_adapter(request)`` for one application, cached by host.

    ``slow(app, request)`` is Flask's own method; it computes every first sighting of a
    host, and every request when the URL map's class binds differently from
    Werkzeug's :class:`~werkzeug.routing.Map`. A host that does not match
    ``SERVER_NAME`` (Werkzeug warns, and binds the subdomain ``"<invalid>"``)
    is never cached, so that it warns every time, as with Flask.
    """

    __slots__ = ("_cache", "_slow")

    def __init__(self, slow: Callable[[Any, Any], MapAdapter | None]) -> None:
        self._slow = slow
        # Saves ~33,000-40,000 instructions per request (JSON ping, 430.7k ->
        # 398.0k for aioflask ASGI with a def view, 364.5k -> 324.0k in WSGI
        # mode: benchmarks/instructions.py). 256 entries: hosts, not requests.
        self._cache: BoundedCache[tuple[Any, ...], _Bound] = BoundedCache(256)

    def __call__(self, app: Any, request: Request) -> MapAdapter | None:
        url_map = app.url_map
        cls = type(url_map)
        if cls.bind_to_environ is not Map.bind_to_environ or cls.bind is not Map.bind:
            return self._slow(app, request)
        config = app.config
        trusted = config["TRUSTED_HOSTS"]
        if trusted is not None:
            request.trusted_hosts = trusted
        trusted = request.trusted_hosts
        environ = request.environ
        get = environ.get
        # Everything get_host, bind_to_environ and create_url_adapter read,
        # except the path, method and query string.
        key = (
            environ["wsgi.url_scheme"],
            get("HTTP_HOST"),
            get("SERVER_NAME"),
            get("SERVER_PORT"),
            get("HTTP_CONNECTION"),
            get("HTTP_UPGRADE"),
            get("SCRIPT_NAME"),
            None if trusted is None else tuple(trusted),
            config["SERVER_NAME"],
            url_map.host_matching,
            url_map.default_subdomain,
            app.subdomain_matching,
        )
        bound = self._cache.get(key)
        if bound is None:
            adapter = self._slow(app, request)
            if type(adapter) is MapAdapter and adapter.subdomain != "<invalid>":
                self._cache.put(
                    key,
                    (
                        request.host,
                        adapter.server_name,
                        adapter.script_name,
                        adapter.subdomain,
                        adapter.url_scheme,
                    ),
                )
            return adapter
        host, server_name, script_name, subdomain, url_scheme = bound
        request.host = host
        path = get("PATH_INFO")
        query = get("QUERY_STRING")
        # bind_to_environ's decoding of WSGI strings, and bind's defaults.
        return MapAdapter(
            url_map,
            server_name,
            script_name,
            subdomain,
            url_scheme,
            "/" if path is None else path.encode("latin1").decode(errors="replace"),
            environ["REQUEST_METHOD"],
            None if query is None else query.encode("latin1").decode(errors="replace"),
        )
