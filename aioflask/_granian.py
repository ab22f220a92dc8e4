"""Serve with granian's ASGI interface: ``flask aiorun --server granian``.

granian is a Rust HTTP server: it parses requests, builds the ASGI scope and
writes responses without Python, so the same app gets more of the CPU. Its
main process binds the socket and watches the workers; each worker is a
child process running the app on its own event loop (lifespan included).
"""

from __future__ import annotations

import functools
import multiprocessing
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["RSGI_REFUSED", "run_granian"]

#: What an app served through granian's RSGI interface says.
RSGI_REFUSED = (
    "aioflask is an ASGI application, and granian serves RSGI by default: run"
    " 'granian --interface asgi module:app', or 'flask --app module aiorun --server granian'."
)

# uvicorn's log levels, as granian names them (granian has no "trace").
_LOG_LEVELS = {"trace": "debug", "warn": "warning"}

#: The app a forked worker serves: set in the serving process just before
#: granian forks its workers, so they serve the very object that was loaded
#: (with the debugger, if any) instead of importing it again.
_app: Flask | None = None


def _worker_app(load_app: Callable[[], Flask], target: str) -> Flask:
    """granian's target loader, called in each worker process.

    A forked worker finds the app in :data:`_app`; a spawned one (the
    reloader, or a platform whose start method is "spawn") starts empty and
    loads the app anew with ``load_app``.
    """
    return _app if _app is not None else load_app()


def _free_port(host: str) -> int:
    # granian logs the port it was given: with 0 it would log 0. Picking a
    # free port first prints the real one (another process could take it in
    # between; granian then fails to bind and says so).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def run_granian(
    app: Flask | None,
    load_app: Callable[[], Flask],
    *,
    host: str,
    port: int,
    reload: bool,
    workers: int,
    certfile: str | None,
    keyfile: str | None,
    log_level: str = "info",
    **options: Any,
) -> None:
    """Serve with granian (ASGI, lifespan on) until interrupted.

    ``app`` is served by forked workers; with ``app=None`` (reload, several
    workers) each worker calls ``load_app``, a module-level function (it is
    pickled for spawned workers). Other keyword arguments go to
    :class:`granian.Granian`.
    """
    try:
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels
    except ImportError as e:
        raise ImportError(
            "Serving with granian needs the granian package: pip install 'aioflask[granian]'."
        ) from e

    global _app
    _app = app
    if reload:
        # A forked worker would inherit the modules imported before the
        # change; a spawned one imports the new code.
        multiprocessing.set_start_method("spawn", force=True)
    server = Granian(
        # The import path granian shows in its process title; the app itself
        # comes from the loader below.
        "aioflask",
        address=host,
        port=port or _free_port(host),
        interface=Interfaces.ASGI,
        workers=workers,
        reload=reload,
        log_level=LogLevels(_LOG_LEVELS.get(log_level, log_level)),
        ssl_cert=Path(certfile) if certfile else None,
        ssl_key=Path(keyfile) if keyfile else None,
        **options,
    )
    server.serve(target_loader=functools.partial(_worker_app, load_app))
