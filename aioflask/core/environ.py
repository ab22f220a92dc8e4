"""ASGI scope -> PEP 3333 ``environ``: what a WSGI application sees of a request.

Used for HTTP requests and for the handshake of WebSocket connections.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

from .caches import BoundedCache
from .files import FileWrapper
from .types import HTTPScope, WSGIEnviron

__all__ = ["build_environ"]

# Header name -> environ key; None for names that are dropped (those with an
# underscore, which would be indistinguishable from a dash in the environ).
# Saves ~12,900 instructions per request of 3 headers (447.9k -> 434.9k,
# benchmarks/instructions.py, ASGI def view).
_HEADER_KEYS: BoundedCache[bytes, str | None] = BoundedCache(
    4096, {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
)


_UNKNOWN = "?"


def _header_key(name: bytes) -> str | None:
    """The environ key of a header name not in the cache yet (and cache it)."""
    text = name.decode("latin-1")
    return _HEADER_KEYS.put(name, None if "_" in text else "HTTP_" + text.upper().replace("-", "_"))


def _latin1(text: str) -> str:
    return text.encode().decode("latin-1")


# (root_path, scheme, http_version, server) -> the environ of their requests
# before the per-request keys are set: copied per request. Saves ~2,000-5,000
# instructions per request (363.0k -> 357.9k, ASGI def view; 369.2k -> 367.6k,
# async def view: benchmarks/instructions.py).
_TEMPLATES: BoundedCache[tuple[Any, ...], WSGIEnviron] = BoundedCache(64)


def _template(root_path: str, scheme: str, version: str, server: Sequence[Any]) -> WSGIEnviron:
    # The per-request keys are in place (empty) to keep the keys' order.
    return {
        "REQUEST_METHOD": "",
        "SCRIPT_NAME": root_path if root_path.isascii() else _latin1(root_path),
        "PATH_INFO": "",
        "QUERY_STRING": "",
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or (443 if scheme == "https" else 80)),
        "SERVER_PROTOCOL": "HTTP/" + version,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "asgi.scope": None,
    }


def build_environ(scope: HTTPScope, body: IO[bytes]) -> WSGIEnviron:
    """Build a PEP 3333 environ for an ASGI HTTP scope.

    Paths are re-decoded as latin-1 from their UTF-8 bytes (PEP 3333's "bytes
    as str"). ``SCRIPT_NAME`` is the scope's ``root_path``; if the server put
    the root path in front of ``path`` too, it is removed from ``PATH_INFO``.
    """
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    server = scope.get("server") or ("localhost", None)
    scheme = scope.get("scheme", "http")
    version = scope.get("http_version", "1.1")
    shared = (root_path, scheme, version, server[0], server[1])
    template = _TEMPLATES.get(shared)
    if template is None:
        template = _TEMPLATES.put(shared, _template(root_path, scheme, version, server))
    environ = template.copy()
    environ["REQUEST_METHOD"] = scope["method"]
    environ["PATH_INFO"] = path if path.isascii() else _latin1(path)
    environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = sys.stderr
    environ["asgi.scope"] = scope
    raw_path = scope.get("raw_path")
    if raw_path:
        uri = raw_path.decode("latin-1")
        if scope["query_string"]:
            uri += "?" + environ["QUERY_STRING"]
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    if "aioflask.environ" in scope:
        # Environ keys with no place in the scope (from aioflask's test client).
        environ.update(scope["aioflask.environ"])  # type: ignore[typeddict-item]
    keys = _HEADER_KEYS
    for name, value in scope["headers"]:
        key = keys.get(name, _UNKNOWN)
        if key is _UNKNOWN:
            key = _header_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            # Repeated headers are joined (RFC 9110 5.3); cookies with "; ".
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + text
        environ[key] = text
    return environ
