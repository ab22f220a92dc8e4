"""Serve an aioflask app with uvicorn (or granian): ``app.run()`` and ``flask aiorun``."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import flask
import uvicorn
from werkzeug.serving import is_running_from_reloader

from ._compat import run_with_reloader

if TYPE_CHECKING:
    from .app import Flask

__all__ = [
    "SERVERS",
    "bind",
    "load_app_from_env",
    "run_server",
    "server_address",
    "uvicorn_config",
    "uvicorn_options",
]

#: The servers ``run_server`` knows (uvicorn is the default).
SERVERS = ("uvicorn", "granian")

#: uvicorn's WebSocket options, from these config keys (the server pings: ASGI cannot).
WEBSOCKET_OPTIONS = {
    "ws_max_size": "WEBSOCKET_MAX_MESSAGE_SIZE",
    "ws_ping_interval": "WEBSOCKET_PING_INTERVAL",
    "ws_ping_timeout": "WEBSOCKET_PING_TIMEOUT",
}
#: Environment variables that carry the app to uvicorn's worker processes.
APP_ENV = "AIOFLASK_APP"
DEBUGGER_ENV = "AIOFLASK_DEBUGGER"
#: The listening socket, passed on to the processes the reloader starts.
SERVER_FD_ENV = "AIOFLASK_SERVER_FD"
#: Seconds a reloaded process waits for the server to shut down (at most).
SHUTDOWN_WAIT = 10.0


def use_debugger(app: Flask, host: str | None = None) -> Flask:
    """Wrap ``app.wsgi_app`` in Werkzeug's interactive, PIN-protected debugger."""
    from werkzeug.debug import DebuggedApplication

    debugged = DebuggedApplication(app.wsgi_app, evalex=True, pin_security=True)
    if host:
        debugged.trusted_hosts.append(host)
    app.wsgi_app = debugged  # type: ignore[method-assign]
    # (Behind the reloader, Werkzeug's debugger prints this itself.)
    if debugged.pin is not None and not is_running_from_reloader():
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
    """Files of a new self-signed certificate, for worker processes to load.

    They hold a private key: they are removed when this process exits.
    """
    from cryptography.hazmat.primitives import serialization
    from werkzeug.serving import generate_adhoc_ssl_pair

    cert, pkey = generate_adhoc_ssl_pair()
    directory = tempfile.mkdtemp(prefix="aioflask-adhoc-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
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


def websocket_options(app: flask.Flask) -> dict[str, Any]:
    """uvicorn's WebSocket options from the app's ``WEBSOCKET_*`` config keys."""
    options = {o: app.config[key] for o, key in WEBSOCKET_OPTIONS.items() if key in app.config}
    if options.get("ws_max_size", 0) is None:  # no limit in the app: uvicorn's own
        del options["ws_max_size"]
    return options


def bind(host: str, port: int, inheritable: bool = False) -> socket.socket:
    """A bound TCP socket; ``inheritable`` for a restarted process (Werkzeug does the same)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(inheritable)
    return sock


def server_address(app: flask.Flask, host: str | None, port: int | None) -> tuple[str, int]:
    """Flask's defaults: the host and port of ``SERVER_NAME``, else ``127.0.0.1:5000``."""
    server_name = app.config.get("SERVER_NAME")
    sn_host = sn_port = None
    if server_name:
        sn_host, _, sn_port = server_name.partition(":")
    if port is None:
        port = int(sn_port or 5000)
    return host or sn_host or "127.0.0.1", int(port)


def uvicorn_options(app: flask.Flask | None, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for :class:`uvicorn.Config` with aioflask's defaults filled in."""
    defaults = {"log_level": "info", "lifespan": "on"}
    if app is not None:
        defaults.update(websocket_options(app))
    return {**defaults, **options}


def uvicorn_config(target: Any, ssl_context: Any, **options: Any) -> uvicorn.Config:
    """A :class:`uvicorn.Config`, TLS from Flask's ``ssl_context``."""
    certfile, keyfile, context = _ssl_options(ssl_context)
    config = uvicorn.Config(target, ssl_certfile=certfile, ssl_keyfile=keyfile, **options)
    if context is not None:
        config.load()  # then uvicorn uses the context given, as it is
        config.ssl = context
    return config


def _ssl_options(ssl_context: Any) -> tuple[str | None, str | None, ssl.SSLContext | None]:
    """``ssl_context`` as Flask takes it: ``(cert, key)``, ``"adhoc"`` or an SSLContext."""
    if ssl_context is None:
        return None, None, None
    if isinstance(ssl_context, ssl.SSLContext):
        return None, None, ssl_context
    if ssl_context == "adhoc":
        # Werkzeug's, in memory: no key file left behind.
        from werkzeug.serving import generate_adhoc_ssl_context

        return None, None, generate_adhoc_ssl_context()
    if isinstance(ssl_context, tuple) and len(ssl_context) == 2:
        return ssl_context[0], ssl_context[1], None
    raise TypeError(
        "ssl_context must be a (cert_file, key_file) pair, 'adhoc' or an"
        f" ssl.SSLContext, not {ssl_context!r}."
    )


def _serve(
    target: Any, ssl_context: Any, sockets: list[socket.socket] | None, **options: Any
) -> None:
    """Serve ``target`` in this process (``uvicorn.run`` without its reloader and workers)."""
    config = uvicorn_config(target, ssl_context, **options)
    server = uvicorn.Server(config)
    if threading.current_thread() is not threading.main_thread():
        # Behind the reloader, which exits the process from the main thread
        # (on a change, or on SIGTERM): shut down first, as uvicorn does on a
        # signal (lifespan shutdown, background tasks drained).
        done = threading.Event()
        atexit.register(_shut_down, server, done)
    if sockets:
        # uvicorn does not say where it listens when given the socket.
        host, port = sockets[0].getsockname()[:2]
        scheme = "https" if ssl_context is not None or config.is_ssl else "http"
        print(f" * Running on {scheme}://{host}:{port} (Press CTRL+C to quit)", flush=True)
    try:
        server.run(sockets=sockets)
    finally:
        if threading.current_thread() is not threading.main_thread():
            done.set()
    if not server.started:
        sys.exit(3)  # uvicorn's exit code for a failed startup


def _shut_down(server: uvicorn.Server, done: threading.Event) -> None:
    server.should_exit = True
    done.wait(SHUTDOWN_WAIT)


def run_server(
    app: Flask | None,
    *,
    server: str = "uvicorn",
    host: str = "127.0.0.1",
    port: int = 5000,
    reload: bool = False,
    workers: int = 1,
    debugger: bool = False,
    ssl_context: Any = None,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    reloader_interval: float = 1,
    reloader_type: str = "auto",
    app_import_path: str | None = None,
    **options: Any,
) -> None:
    """Serve with uvicorn (or granian, ``server="granian"``) until interrupted.

    ``ssl_context`` is Flask's: a ``(cert_file, key_file)`` pair, ``"adhoc"``
    or an :class:`ssl.SSLContext`. With ``reload``, Werkzeug's reloader
    restarts the whole process when a module or one of ``extra_files``
    changes, as ``flask run`` does; the listening socket, bound once, is
    passed on (so ``port=0`` keeps its port). With more than one worker,
    uvicorn starts new processes that load the app again from
    ``app_import_path`` (the ``--app`` value; ``None`` finds ``app.py`` or
    ``wsgi.py`` as ``flask`` does). Other keyword arguments go to
    :class:`uvicorn.Config` (or :class:`granian.Granian`); the WebSocket size
    limit and pings default to the app's ``WEBSOCKET_*`` config keys.
    """
    if server not in SERVERS:
        raise ValueError(f"Unknown server {server!r}: use one of {', '.join(SERVERS)}.")
    if server == "granian":
        _run_granian(
            app,
            host=host,
            port=port,
            reload=reload,
            workers=workers,
            debugger=debugger,
            ssl_context=ssl_context,
            app_import_path=app_import_path,
            **options,
        )
        return
    options = uvicorn_options(app, options)
    if workers > 1:
        os.environ[APP_ENV] = app_import_path or ""
        if debugger:
            os.environ[DEBUGGER_ENV] = host
        if ssl_context == "adhoc":  # each worker loads the files anew
            ssl_context = _adhoc_certificate()
        certfile, keyfile, context = _ssl_options(ssl_context)
        if context is not None:
            raise ValueError("With several workers, give ssl_context as (cert_file, key_file).")
        uvicorn.run(
            f"{__name__}:load_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            **options,
        )
        return
    if app is None:
        app = load_app_from_env()
        options = {**websocket_options(app), **options}  # the caller's options win
    if not reload:
        if debugger:
            use_debugger(app, host)
        _serve(app, ssl_context, None, host=host, port=port, **options)
        return
    if not is_running_from_reloader():
        # The watching process: bind once; each restarted process inherits it.
        sock = bind(host, port, inheritable=True)
        os.environ[SERVER_FD_ENV] = str(sock.fileno())
        sock.detach()
    else:
        sock = socket.socket(fileno=int(os.environ[SERVER_FD_ENV]))
        if debugger:  # in the process that serves only
            use_debugger(app, host)

    def serve() -> None:
        _serve(app, ssl_context, [sock], **options)

    run_with_reloader(
        serve,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        interval=reloader_interval,
        reloader_type=reloader_type,
    )


def _run_granian(
    app: Flask | None,
    *,
    host: str,
    port: int,
    reload: bool,
    workers: int,
    debugger: bool,
    ssl_context: Any,
    app_import_path: str | None,
    **options: Any,
) -> None:
    """Serve with granian: its own reloader and workers load the app again."""
    from ._granian import run_granian

    if ssl_context == "adhoc":  # granian's workers load certificate files
        ssl_context = _adhoc_certificate()
    certfile, keyfile, context = _ssl_options(ssl_context)
    if context is not None:
        raise ValueError(
            "granian takes ssl_context as a (cert_file, key_file) pair or 'adhoc',"
            " not an ssl.SSLContext."
        )
    if reload and app is not None and app_import_path is None:
        # app.run() in a script: granian reloads by loading the app anew in
        # new processes, which needs the app's import path.
        raise ValueError(
            "granian cannot reload an app started by app.run(): pass"
            " use_reloader=False, or run 'flask --app NAME aiorun --server granian --reload'."
        )
    if reload or workers > 1 or app_import_path is not None:
        os.environ[APP_ENV] = app_import_path or ""
    if reload or workers > 1:
        app = None
    else:
        if app is None:
            app = load_app_from_env()
        if debugger:
            use_debugger(app, host)
    if debugger:
        # For the processes that load the app anew.
        os.environ[DEBUGGER_ENV] = host
    for werkzeug_only in ("extra_files", "exclude_patterns", "reloader_interval", "reloader_type"):
        options.pop(werkzeug_only, None)
    run_granian(
        app,
        load_app_from_env,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        certfile=certfile,
        keyfile=keyfile,
        **options,
    )
