"""The URL adapter of a request, bound without redoing the host's work each time.

Flask's :meth:`~flask.Flask.create_url_adapter` calls
:meth:`werkzeug.routing.Map.bind_to_environ` for every request: it validates
the host (``get_host``, the trusted hosts), lowers and IDNA-encodes the
server name and works out the subdomain and scheme. None of that depends on
the path, method or query string, so :class:`URLAdapters` does it once per
distinct set of the values it depends on and builds each request's
:class:`~werkzeug.routing.MapAdapter` from the result: the same adapter,
with the same ``request.host`` and ``request.trusted_hosts``.

Matching the path is Werkzeug's state machine walked part by part (~27,000
instructions a request). A URL without variables always matches the same rule
with the same arguments, until the map changes: :class:`Map` (aioflask's
``url_map_class``) remembers each such match, and the adapters made here look
it up first. Adding a rule forgets them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from werkzeug.routing import Map as WerkzeugMap
from werkzeug.routing import MapAdapter as WerkzeugMapAdapter
from werkzeug.routing import Rule, RuleFactory
from werkzeug.wrappers import Request

from .core.caches import BoundedCache

__all__ = ["Map", "MapAdapter", "URLAdapters"]

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

    def __init__(self, slow: Callable[[Any, Any], WerkzeugMapAdapter | None]) -> None:
        self._slow = slow
        # Saves ~33,000-40,000 instructions per request (JSON ping, 430.7k ->
        # 398.0k for aioflask ASGI with a def view, 364.5k -> 324.0k in WSGI
        # mode: benchmarks/instructions.py). 256 entries: hosts, not requests.
        self._cache: BoundedCache[tuple[Any, ...], _Bound] = BoundedCache(256)

    def __call__(self, app: Any, request: Request) -> WerkzeugMapAdapter | None:
        url_map = app.url_map
        cls = type(url_map)
        if (
            cls.bind_to_environ is not WerkzeugMap.bind_to_environ
            or cls.bind is not WerkzeugMap.bind
        ):
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
            if type(adapter) is WerkzeugMapAdapter and adapter.subdomain != "<invalid>":
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


# (domain part, path, method, websocket, merge_slashes, redirect_defaults)
_MatchKey = tuple[str | None, str, str, bool, bool, bool]


class Map(WerkzeugMap):
    """Werkzeug's :class:`~werkzeug.routing.Map` (aioflask's ``url_map_class``),
    remembering the rule that each URL without variables matched.

    .. versionadded:: 0.5
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Saves ~24,000 instructions per request whose rule has no variables
        # (benchmarks/instructions.py). Hosts x static paths x methods seen.
        self.matches: BoundedCache[_MatchKey, tuple[Rule, dict[str, Any]]] = BoundedCache(1024)
        super().__init__(*args, **kwargs)

    def add(self, rulefactory: RuleFactory) -> None:
        super().add(rulefactory)
        self.matches.clear()


class MapAdapter(WerkzeugMapAdapter):
    """Werkzeug's adapter; the request's own match (Flask's ``match_request``)
    is looked up among the earlier ones of a :class:`Map` first."""

    def match(
        self,
        path_info: str | None = None,
        method: str | None = None,
        return_rule: bool = False,
        query_args: Any = None,
        websocket: bool | None = None,
    ) -> tuple[Any, Any]:
        url_map = self.map
        if (
            path_info is not None
            or method is not None
            or not return_rule
            or websocket is not None
            or type(url_map) is not Map
        ):
            werkzeug_match: Any = super().match
            return werkzeug_match(path_info, method, return_rule, query_args, websocket)  # type: ignore[no-any-return]
        # What Werkzeug's match hands its matcher, and the map's settings it reads.
        domain_part = self.server_name
        if not url_map.host_matching and self.subdomain is not None:
            domain_part = self.subdomain
        key = (
            domain_part,
            self.path_info,
            self.default_method,
            self.websocket,
            url_map.merge_slashes,
            url_map.redirect_defaults,
        )
        matched = url_map.matches.get(key)
        if matched is not None:
            rule, values = matched
            return rule, dict(values)  # the request's own: Flask's hooks may change it
        rule, found = super().match(return_rule=True, query_args=query_args)
        values = cast("dict[str, Any]", found)  # Werkzeug's matcher makes a dict
        if "<" not in f"{rule.rule}{rule.host or ''}{rule.subdomain or ''}":
            # No variables: this URL matches this rule with these values until
            # the map changes (a redirect or an error raised above is not kept).
            url_map.matches.put(key, (rule, dict(values)))
        return rule, values
