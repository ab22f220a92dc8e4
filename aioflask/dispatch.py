"""Flask's request dispatch, with less work per request and the same result.

:class:`Dispatching` is :class:`flask.Flask` with cheaper versions of steps
that every request takes, each giving exactly what Flask's own method gives:

- a signal (``request_started``, ``request_finished``, the teardown and app
  context signals) is sent only when something listens or may listen: a
  receiver connected at any time, or ``send`` replaced (see
  ``aioflask._compat``);
- the per-request hooks (``dispatch_request``, ``preprocess_request``,
  ``process_response``, ``do_teardown_request``) read the request context
  itself, not through the ``request`` proxy;
- a view's ``dict`` or ``list`` becomes Flask's JSON response without
  :func:`json.dumps` building a new encoder for every response.

A subclass or extension that overrides one of these methods, or replaces the
JSON provider with one of its own, gets Flask's behaviour through its own
method, as with Flask.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask.json.provider import DefaultJSONProvider

from . import _compat
from .core.caches import BoundedCache
from .wrappers import new_response

__all__ = ["Dispatching"]


class Dispatching(_compat.DispatchSignals):
    """:class:`flask.Flask` with cheaper dispatch steps (see the module)."""

    # The JSON provider known to answer as DefaultJSONProvider for this app.
    _default_json: Any = None

    def _json_response(self, obj: Any) -> flask.Response | None:
        """``self.json.response(obj)`` when the provider is Flask's default
        one (its ``default``, ``ensure_ascii``, ``sort_keys``, ``compact`` and
        ``mimetype`` as they are set); ``None`` for any other provider."""
        provider: Any = self.json
        if provider is not self._default_json:
            if not _is_default_provider(provider, self):
                return None
            self._default_json = provider
        compact = provider.compact
        indent = (compact is None and self.debug) or compact is False
        default = provider.default
        ensure_ascii = provider.ensure_ascii
        sort_keys = provider.sort_keys
        # What json.dumps makes of DefaultJSONProvider.dumps' arguments: an
        # encoder of JSONEncoder's class as it is now (json.dumps reads it
        # per call), whose encode() keeps no state from call to call.
        cls = json.JSONEncoder
        key = (cls, default, ensure_ascii, sort_keys, indent)
        try:
            encoder = _ENCODERS.get(key)
        except TypeError:  # an unhashable `default`
            return provider.response(obj)  # type: ignore[no-any-return]
        if encoder is None:
            encoder = _ENCODERS.put(
                key,
                cls(
                    default=default,
                    ensure_ascii=ensure_ascii,
                    sort_keys=sort_keys,
                    indent=2 if indent else None,
                    separators=None if indent else (",", ":"),
                ),
            )
        text = f"{encoder.encode(obj)}\n"
        response = new_response(self.response_class, text, provider.mimetype)
        if response is None:
            return self.response_class(text, mimetype=provider.mimetype)
        return response


# (JSONEncoder class, default, ensure_ascii, sort_keys, indented) -> encoder.
# Saves ~13,000 instructions per JSON response (json.dumps with Flask's
# arguments 26.7k, the cached encoder's encode() 13.6k; benchmarks/flask_steps.py).
_ENCODERS: BoundedCache[tuple[Any, ...], json.JSONEncoder] = BoundedCache(64)


def _is_default_provider(provider: Any, app: flask.Flask) -> bool:
    """Whether ``provider.response`` is DefaultJSONProvider's, for ``app``."""
    cls = type(provider)
    return (
        isinstance(provider, DefaultJSONProvider)
        and cls.response is DefaultJSONProvider.response
        and cls.dumps is DefaultJSONProvider.dumps
        and _compat.json_provider_is_plain(provider)
        and _compat.json_provider_app(provider) == app
    )
