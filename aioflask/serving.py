"""Serve an aioflask app with uvicorn: ``app.run()`` and ``flask aiorun``."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["load_app_from_env", "run_server"]

#: uvicorn's WebSocket options, from these config keys (the server pings: ASGI cannot).
WEBSOCKET_OPTIONS = {
    "ws_max_size": "WEBSOCKET_MAX_MESSAGE_SIZE",
    "ws_ping_interval": "WEBSOCKET_PING_INTERVAL",
    "ws_ping_timeout": "WEBSOCKET_PING_TIMEOUT",
}
#: Environment variables that carry the app to uvicorn's worker processes.
APP_ENV = "AIOFLASK_APP"
DEBUGGER_ENV = "AIOFLASK_DEBUGGER"


def use_debugger(app: Flask, host: str | None = None) -> Flask:
    """Wrap ``app.wsgi_app`` in Werkzeug's interactive, PIN-protected debugger."""
    from werkzeug.debug import DebuggedApplication

    debugged = DebuggedApplication(app.wsgi_app, evalex=True, pin_security=True)
    if host:
        debugged.trusted_hosts.append(host)
    app.wsgi_app = debugged  # type: ignore[method-assign]
    if debugged.pin is not None:
        print(f" * Debugger is active!\n * Debugger PIN: {debugged.pin}", flush=True)
    return app


def load_app_from_env() -> Flask:
    """Load the app in a uvicorn worker or reloader process (an app factory).

    ``flask aiorun`` records the ``--app`` value in the environment; this loads
    it the way the ``flask`` command does.
    """
    from flask.cli import ScriptInfo

    info = ScriptInfo(app_import_path=os.environ.get(APP_ENV) or None)
    app: Flask = info.load_app()  # type: ignore[assignment]
    if os.environ.get(DEBUGGER_ENV):
        use_debugger(app, os.environ[DEBUGGER_ENV])
    return app


def _adhoc_certificate() -> tuple[str, str]:
    from werkzeug.serving import generate_adhoc_ssl_pair

    cert, pkey = generate_adhoc_ssl_pair()
    from cryptography.hazmat.primitives import serialization

    directory = tempfile.mkdtemp(prefix="aioflask-adhoc-")
    cert_file = os.path.join(directory, "cert.pem")
    key_file = os.path.join(directory, "key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(
            pkey.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return cert_file, key_file


def websocket_options(app: Flask) -> dict[str, Any]:
    """uvicorn's WebSocket options from the app's ``WEBSOCKET_*`` config keys."""
    options = {o: app.config[key] for o, key in WEBSOCKET_OPTIONS.items() if key in app.config}
    if options.get("ws_max_size", 0) is None:  # no limit in the app: uvicorn's own
        del options["ws_max_size"]
    return options


def run_server(
    app: Flask | None,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    reload: bool = False,
    workers: int = 1,
    debugger: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
    app_import_path: str | None = None,
    **options: Any,
) -> None:
    """Serve with uvicorn until interrupted.

    With ``reload`` or more than one worker, uvicorn starts new processes that
    load the app again from ``app_import_path`` (the ``--app`` value; ``None``
    finds ``app.py`` or ``wsgi.py`` as ``flask`` does); ``app`` is then unused.
    Other keyword arguments go to :class:`uvicorn.Config`; the WebSocket
    size limit and pings default to the app's ``WEBSOCKET_*`` config keys.
    """
    if certfile == "adhoc":
        certfile, keyfile = _adhoc_certificate()
    options.setdefault("log_level", "info")
    options.setdefault("lifespan", "on")
    if reload or workers > 1:
        os.environ[APP_ENV] = app_import_path or ""
        if debugger:
            os.environ[DEBUGGER_ENV] = host
        target: Any = f"{__name__}:load_app_from_env"
        options["factory"] = True
    else:
        if app is None:
            app = load_app_from_env()
        if debugger:
            use_debugger(app, host)
        target = app
    if app is not None:
        options = {**websocket_options(app), **options}
    uvicorn.run(
        target,
        host=host,
        port=port,
        reload=reload,
        workers=workers if workers > 1 else None,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        **options,
    )
