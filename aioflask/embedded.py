"""Serve an app with uvicorn inside an event loop that is already running.

``await app.serve()`` (``app.run_task()`` in Quart's words): the server is a
task of the caller's loop, beside whatever else the program runs. It stops
when its ``shutdown_trigger`` completes, on SIGINT/SIGTERM when there is no
trigger, or when the task is cancelled; each way runs the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from asyncio import CancelledError
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import flask
import uvicorn
from uvicorn.lifespan.on import LifespanOn

from .core.lifespan import LifespanError
from .serving import bind, server_address, uvicorn_config, uvicorn_options

__all__ = ["Embedding"]

logger = logging.getLogger("uvicorn.error")
#: uvicorn options an embedded server cannot honour.
UNSUPPORTED = ("reload", "uds", "fd")


class _Lifespan(LifespanOn):
    """uvicorn's lifespan, keeping the message of a failed startup for the caller."""

    failure = ""

    async def send(self, message: Any) -> None:
        if message["type"] == "lifespan.startup.failed":
            self.failure = message.get("message") or ""
        await super().send(message)


class _Server(uvicorn.Server):
    """A uvicorn server that says when it serves, and may leave signals alone."""

    def __init__(
        self, config: uvicorn.Config, on_started: Callable[[], None], signals: bool
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._signals = signals

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
            # (uvicorn < 0.50 returns where later versions exit.)
            failed = self.lifespan.should_exit
        except SystemExit:
            # uvicorn's answer to a failed lifespan startup; a SystemExit must
            # not leave a task (asyncio re-raises it out of the loop).
            failed = True
        if failed:
            failure = getattr(self.lifespan, "failure", "") or "see the log"
            raise LifespanError(f"The app failed to start: {failure}") from None
        if self.should_exit:
            # Stopped while starting: the stop takes effect at the main loop's
            # first tick, so that the shutdown (lifespan included) runs as on
            # any stop; uvicorn < 0.41 skips it when a started server has
            # should_exit set already.
            self.should_exit = False
            asyncio.get_running_loop().call_soon(setattr, self, "should_exit", True)
        else:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._signals:
            with super().capture_signals():
                yield
        else:  # the program that embeds the server owns its signals
            yield


class Embedding(flask.Flask):
    """:meth:`serve` and :meth:`run_task` of :class:`aioflask.Flask` (one of its base classes)."""

    async def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        debug: bool | None = None,
        ssl_context: Any = None,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
        ready: asyncio.Future[str] | None = None,
        **options: Any,
    ) -> None:
        """Serve the app with uvicorn in the running event loop, until stopped.

        For a program that runs its own loop and serves the app beside other
        work::

            ready = asyncio.get_running_loop().create_future()
            server = asyncio.create_task(app.serve(port=0, ready=ready))
            url = await ready  # "http://127.0.0.1:54321": serving
            ...
            server.cancel()  # stops serving; lifespan shutdown runs

        ``host`` and ``port`` default as in :meth:`run` (``port=0`` binds a
        free port); ``ssl_context`` is :meth:`run`'s. ``ready``, a future, is
        set to the server's URL once startup is done and it accepts
        connections (to the startup error if it fails). The server stops, and
        runs the lifespan shutdown, when ``shutdown_trigger()`` (an async
        callable) returns, or when the task is cancelled; without a trigger,
        SIGINT and SIGTERM stop it too. A failed startup raises
        :exc:`~aioflask.testing.LifespanError`; a port in use, :exc:`OSError`.
        Other keyword arguments go to :class:`uvicorn.Config`; uvicorn leaves
        the program's logging configuration alone unless ``log_config`` is
        given. No reloader, no workers: see :meth:`run` for those.

        .. versionadded:: 0.5
        """
        # (fd=0 is a descriptor; None and False are no value.)
        unsupported = [
            k for k in UNSUPPORTED if options.get(k) is not None and options[k] is not False
        ]
        if (options.get("workers") or 1) > 1:
            unsupported.append("workers")
        if unsupported:
            raise TypeError(
                f"app.serve() does not take {', '.join(unsupported)}: it serves on host and"
                " port, in this process's event loop. For a reloader or worker processes,"
                " use app.run() or 'flask aiorun'."
            )
        if debug is not None:
            self.debug = bool(debug)
        host, port = server_address(self, host, port)
        # The program embedding the server keeps its own logging configuration.
        options.setdefault("log_config", None)
        config = uvicorn_config(self, ssl_context, **uvicorn_options(self, options))
        if not config.loaded:
            config.load()
        config.lifespan_class = _Lifespan
        trigger = asyncio.ensure_future(shutdown_trigger()) if shutdown_trigger else None
        try:
            # Bound here: the port is known (port=0) and an error is an
            # OSError, not uvicorn's sys.exit().
            with bind(host, port) as sock:
                await _serve(config, sock, trigger, ready)
        except BaseException as exc:
            if ready is not None and not ready.done() and not isinstance(exc, CancelledError):
                ready.set_exception(exc)
                ready.exception()  # retrieved: serve() raises it too
            raise
        finally:
            if trigger is not None:
                trigger.cancel()
            if ready is not None and not ready.done():
                ready.cancel()  # cancelled before the server was ready
        if trigger is not None and trigger.done() and not trigger.cancelled():
            trigger.result()  # the trigger's own exception is the caller's

    def run_task(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        debug: bool | None = None,
        ca_certs: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    ) -> Coroutine[Any, Any, None]:
        """:meth:`serve`, with Quart's arguments: a coroutine to await or make a task of.

        ``certfile`` and ``keyfile`` turn TLS on, ``ca_certs`` is the file of
        the authorities that client certificates are checked against.

        .. versionadded:: 0.5
        """
        ssl_context = (certfile, keyfile) if certfile and keyfile else None
        options: dict[str, Any] = {"ssl_ca_certs": ca_certs} if ca_certs else {}
        return self.serve(
            host,
            port,
            debug=debug,
            ssl_context=ssl_context,
            shutdown_trigger=shutdown_trigger,
            **options,
        )


async def _serve(
    config: uvicorn.Config,
    sock: socket.socket,
    trigger: asyncio.Future[Any] | None,
    ready: asyncio.Future[str] | None,
) -> None:
    """Serve on ``sock`` until ``trigger`` completes or this is cancelled."""
    name = sock.getsockname()
    address = f"[{name[0]}]" if ":" in name[0] else name[0]
    url = f"{'https' if config.ssl else 'http'}://{address}:{name[1]}"

    def on_started() -> None:
        logger.info("Uvicorn running on %s", url)
        if ready is not None and not ready.done():
            ready.set_result(url)

    server = _Server(config, on_started, signals=trigger is None)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.wait(
            {serving, trigger} if trigger else {serving}, return_when="FIRST_COMPLETED"
        )
    except CancelledError:
        # Cancelled: shut down as on a signal (lifespan shutdown included).
        server.should_exit = True
        try:
            await asyncio.shield(serving)
        except CancelledError:  # cancelled again: stop at once
            serving.cancel()
        raise
    server.should_exit = True
    await serving
