"""The aioflask application: Flask, with an ASGI entry point on the bridge."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from inspect import iscoroutinefunction
from types import FunctionType
from typing import Any, TypeVar

import flask
import flask.cli
import flask.testing
from asgiref.sync import markcoroutinefunction
from flask.cli import show_server_banner
from flask.helpers import get_debug_flag
from flask.sansio.scaffold import setupmethod
from werkzeug.datastructures import ImmutableDict
from werkzeug.routing import MapAdapter

from ._granian import RSGI_REFUSED
from .cli import AppGroup
from .core.bridge import make_sync, run_sync
from .core.caches import BoundedCache
from .core.dual import Awaiting
from .core.http import HTTPConnection
from .core.lifespan import LifespanConnection
from .core.timeouts import Timeouts
from .core.types import Receive, Scope, Send
from .core.websocket import ENVIRON_KEY
from .ctx import AppContext, RequestContext, WebSocketContext
from .databases import watch_sqlalchemy
from .dispatch import Dispatching
from .embedded import Embedding
from .handshake import WebSocketHooks, do_teardown_websocket, websocket_route
from .lifespan import ServingHooks
from .routing import Map, URLAdapters
from .serving import run_server, server_address
from .signals import got_websocket_exception
from .tasks import BackgroundTasks
from .templating import Environment
from .testing import FlaskClient, FlaskCliRunner, on_aioflask_client
from .threads import THREAD_MARK, run_blocking
from .watchdog import LoopWatch, LoopWatchdog
from .websockets import WebSocket, handshake_connection
from .wrappers import Request, Response, new_response, sync_body

__all__ = ["Flask"]

F = TypeVar("F", bound=Callable[..., Any])


class Flask(WebSocketHooks, ServingHooks, Embedding, Dispatching):
    """A :class:`flask.Flask` that is also an ASGI application.

    Called with ``(scope, receive, send)`` it serves ASGI ``http``,
    ``websocket`` and ``lifespan``; called with ``(environ, start_response)`` it is still a WSGI
    application. Flask's dispatch runs in a greenlet on the event loop, and
    ``async def`` views, hooks and handlers are awaited on that loop.

    .. versionadded:: 0.5
    """

    request_class = Request
    response_class = Response
    url_map_class = Map
    jinja_environment = Environment  # type: ignore[assignment]
    test_client_class = FlaskClient
    test_cli_runner_class = FlaskCliRunner
    #: The class serving an ASGI ``http`` scope:
    #: ``cls(wsgi_app, scope, receive, send, timeouts)()``.
    asgi_http_class = HTTPConnection
    #: The class serving an ASGI ``websocket`` scope:
    #: ``cls(wsgi_app, scope, receive, send, max_message_size)()``.
    asgi_websocket_class = WebSocket
    #: The class serving the ASGI ``lifespan`` scope: ``cls(app, scope, receive, send)()``.
    asgi_lifespan_class = LifespanConnection

    default_config = ImmutableDict(
        flask.Flask.default_config,
        # Run every sync view and hook in a worker thread (see in_thread).
        AIOFLASK_SYNC_IN_THREAD=False,
        # Threads of the pool that runs them (and run_in_thread); None: the loop's.
        AIOFLASK_THREADS=32,
        # Seconds background tasks get to finish at shutdown (None: no limit).
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=5.0,
        # Warn when the event loop is held longer than this many seconds
        # (see watchdog.py); None: 0.1 in debug mode, else off; 0: off.
        AIOFLASK_BLOCKED_LOOP_WARNING=None,
        # Freeze the objects that exist once the app has started (gc.freeze()),
        # so that garbage collections while serving do not walk them again.
        AIOFLASK_GC_FREEZE=True,
        # WebSocket limits: a larger message closes the connection with 1009
        # (None: no limit); the server pings idle clients every interval and
        # closes when no pong comes within the timeout (flask aiorun and
        # app.run() pass these to uvicorn; other servers have their own).
        WEBSOCKET_MAX_MESSAGE_SIZE=16 * 1024 * 1024,
        WEBSOCKET_PING_INTERVAL=20.0,
        WEBSOCKET_PING_TIMEOUT=20.0,
        # Seconds without progress before a request body read gives up (408)
        # and a response send gives up (connection closed); None: no limit.
        BODY_TIMEOUT=60.0,
        RESPONSE_TIMEOUT=60.0,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli = AppGroup(self.name)
        watch_sqlalchemy()
        # What ensure_sync answers for a plain function (Flask asks for every
        # view and hook of every request). Saves ~4,000 instructions per call
        # (2,560 against 6,610: callgrind, 100,000 calls for a sync view).
        self._ensure_sync_cache: BoundedCache[tuple[Any, bool], Callable[..., Any]] = BoundedCache(
            10_000
        )
        #: The running background tasks (see add_background_task).
        self.background_tasks = BackgroundTasks(self)
        self._thread_pool: ThreadPoolExecutor | None = None
        self._thread_pool_pid = 0
        self._thread_pool_lock = threading.Lock()
        self._loop_watch = LoopWatch()
        self._gc_frozen = False
        self._url_adapters = URLAdapters(_flask_url_adapter)

    def __call__(self, *args: Any) -> Any:
        """ASGI with three arguments, WSGI with two."""
        if len(args) == 2:
            return self.wsgi_app(*args)
        return self.asgi_app(*args)

    # Servers tell ASGI 3 apps by asking whether __call__ is a coroutine function.
    __call__ = markcoroutinefunction(__call__)

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application; middleware can wrap it like ``wsgi_app``."""
        if not self._loop_watch.watched:
            self._loop_watch.start(self)
        config = self.config
        if scope["type"] == "http":
            timeouts = Timeouts(config["BODY_TIMEOUT"], config["RESPONSE_TIMEOUT"])
            await self.asgi_http_class(self.wsgi_app, scope, receive, send, timeouts)()
        elif scope["type"] == "websocket":
            limit = config["WEBSOCKET_MAX_MESSAGE_SIZE"]
            await self.asgi_websocket_class(self.wsgi_app, scope, receive, send, limit)()
        elif scope["type"] == "lifespan":
            # Again here: an app factory may import SQLAlchemy after making the app.
            watch_sqlalchemy()
            await self.asgi_lifespan_class(self, scope, receive, send)()
        else:
            # The ASGI spec: an application raises on a scope type it does not know.
            raise ValueError(
                f"aioflask cannot serve ASGI scope type {scope['type']!r}: it serves"
                " 'http', 'websocket' and 'lifespan'."
            )

    def __rsgi_init__(self, loop: Any) -> None:
        """Refuse granian's RSGI interface (its default) with the command that works.

        granian calls it in each worker before serving with ``--interface rsgi``;
        the app would otherwise be called as if it were a WSGI application, and
        every request would fail.
        """
        raise RuntimeError(RSGI_REFUSED)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        """A request through granian's RSGI interface: refused, as in :meth:`__rsgi_init__`."""
        raise RuntimeError(RSGI_REFUSED)

    async def startup(self) -> None:
        """Start serving: run the :meth:`before_serving` functions, then the
        :meth:`while_serving` generators to their ``yield``, in order.

        Called at ASGI lifespan startup; an exception is logged and stops the
        server (the generators already started are closed first). Then, with
        ``AIOFLASK_GC_FREEZE``, what exists is frozen (``gc.freeze()``) until
        :meth:`shutdown`.

        .. versionadded:: 0.5
        """
        try:
            await run_sync(self._start_serving)
        except Exception:
            self.logger.exception("Error in lifespan startup")
            raise
        if self.config["AIOFLASK_GC_FREEZE"] and not self._gc_frozen:
            gc.collect()
            gc.freeze()
            self._gc_frozen = True

    async def shutdown(self) -> None:
        """Stop serving: drain the background tasks, run the :meth:`after_serving`
        functions, then the :meth:`while_serving` generators past their
        ``yield``, then shut the thread pool down.

        Tasks are drained first (they may need what the hooks close), and the
        pool last (the hooks may use it); the loop watchdog stops then too.
        The hooks and generators run in the order Quart runs them (each list
        in registration order). Called at ASGI lifespan shutdown.

        .. versionadded:: 0.5
        """
        try:
            await self.background_tasks.drain()
            await run_sync(self._stop_serving)
        except Exception:
            self.logger.exception("Error in lifespan shutdown")
            raise
        finally:
            self.shutdown_thread_pool()
            self._loop_watch.stop()
            if self._gc_frozen:  # collectable again, in a process that goes on
                gc.unfreeze()
                self._gc_frozen = False

    def _start_serving(self) -> None:
        with self.app_context():
            for func in self.before_serving_funcs:
                self.ensure_sync(func)()
            self._serving_generators.start(self, self.while_serving_funcs)

    def _stop_serving(self) -> None:
        with self.app_context():
            try:
                for func in self.after_serving_funcs:
                    self.ensure_sync(func)()
            finally:
                # Generators past their yield are always finished.
                self._serving_generators.stop(self)

    @property
    def loop_watchdog(self) -> LoopWatchdog | None:
        """The loop watchdog while it runs (see ``AIOFLASK_BLOCKED_LOOP_WARNING``).

        .. versionadded:: 0.5
        """
        return self._loop_watch.watchdog

    @property
    def blocked_loop_count(self) -> int:
        """How many times the event loop was held longer than the watchdog's threshold.

        For monitoring; always 0 while ``AIOFLASK_BLOCKED_LOOP_WARNING`` is
        off (see :doc:`/production`).

        .. versionadded:: 0.5
        """
        return self._loop_watch.count

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Make ``func`` callable from Flask's sync dispatch.

        Coroutine functions are awaited on the loop through the bridge; sync
        functions run as they are, or in a worker thread when marked with
        :func:`~aioflask.in_thread` or when ``AIOFLASK_SYNC_IN_THREAD`` is set.
        """
        key = (func, self.config["AIOFLASK_SYNC_IN_THREAD"])
        wrapped = self._ensure_sync_cache.get(key)
        if wrapped is None:
            wrapped = self._sync_callable(func, key[1])
            if type(func) is FunctionType:  # not bound methods: new every time
                self._ensure_sync_cache.put(key, wrapped)
        return wrapped

    def _sync_callable(self, func: Callable[..., Any], in_thread: bool) -> Callable[..., Any]:
        if iscoroutinefunction(func):
            return self.async_to_sync(func)
        if in_thread or getattr(func, THREAD_MARK, False):
            return run_blocking(func, lambda: self.thread_pool)
        return func

    @property
    def thread_pool(self) -> ThreadPoolExecutor | None:
        """The pool of :func:`~aioflask.in_thread` functions and :func:`~aioflask.run_in_thread`.

        Made on first use with ``AIOFLASK_THREADS`` threads (started as
        needed), again in a forked process, and shut down at lifespan
        shutdown; ``None`` when that key is ``None`` (the loop's default pool).

        .. versionadded:: 0.5
        """
        pool = self._thread_pool
        if pool is None or self._thread_pool_pid != os.getpid():
            size = self.config["AIOFLASK_THREADS"]
            if size is None:
                return None
            with self._thread_pool_lock:
                if self._thread_pool is None or self._thread_pool_pid != os.getpid():
                    # A forked child inherits the pool but not its threads.
                    self._thread_pool = ThreadPoolExecutor(
                        int(size), thread_name_prefix=f"aioflask-{self.name}"
                    )
                    self._thread_pool_pid = os.getpid()
                pool = self._thread_pool
        return pool

    def shutdown_thread_pool(self) -> None:
        """Let the thread pool's threads end once idle; a later use makes a new pool.

        Called at lifespan shutdown, after the ``after_serving`` hooks.

        .. versionadded:: 0.5
        """
        with self._thread_pool_lock:
            pool, self._thread_pool = self._thread_pool, None
        if pool is not None and self._thread_pool_pid == os.getpid():
            pool.shutdown(wait=False)

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """Return a sync function that awaits ``func`` on the event loop.

        Inside a request this suspends the request's greenlet; where no loop
        runs (WSGI mode, the CLI) the coroutine runs on a private loop.
        """
        return make_sync(func)

    def create_url_adapter(self, request: flask.Request | None) -> MapAdapter | None:
        """Flask's ``create_url_adapter``; for a request, the host's part is cached."""
        if request is None:
            return super().create_url_adapter(None)
        return self._url_adapters(self, request)

    def app_context(self) -> AppContext:
        """An app context; ``with`` or ``async with`` it."""
        return AppContext(self)

    def request_context(self, environ: dict[str, Any]) -> RequestContext:
        """A request context for a WSGI environ; ``with`` or ``async with`` it.

        A :class:`~aioflask.ctx.WebSocketContext` for a WebSocket handshake.
        """
        if ENVIRON_KEY in environ:
            return WebSocketContext(self, environ)
        return RequestContext(self, environ)

    def test_request_context(self, *args: Any, **kwargs: Any) -> RequestContext:
        """Flask's ``test_request_context``; ``async with`` works too."""
        return super().test_request_context(*args, **kwargs)  # type: ignore[return-value]

    def test_client(self, use_cookies: bool = True, **kwargs: Any) -> FlaskClient:
        """Flask's ``test_client()``: ``client.get(...)`` in a sync test, ``await
        client.get(...)`` in an async one; requests go through the ASGI app.

        A ``test_client_class`` written for Flask's client (Flask-Login's
        ``FlaskLoginClient``) is used on top of aioflask's.
        """
        cls = self.test_client_class
        if cls is None or not issubclass(cls, flask.testing.FlaskClient):
            return super().test_client(use_cookies, **kwargs)  # type: ignore[return-value]
        return on_aioflask_client(cls)(self, self.response_class, use_cookies=use_cookies, **kwargs)

    def test_cli_runner(self, **kwargs: Any) -> FlaskCliRunner:
        """Flask's ``test_cli_runner()``: ``runner.invoke(...)``, awaited in a coroutine."""
        return super().test_cli_runner(**kwargs)  # type: ignore[return-value]

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        load_dotenv: bool = True,
        **options: Any,
    ) -> None:
        """Serve the app with uvicorn (for development, like Flask's ``run``).

        Takes Flask's arguments: ``port=0`` binds a free port (printed);
        ``debug`` turns on Werkzeug's debugger and reloader (``use_debugger``
        and ``use_reloader`` turn them on or off); the reloader restarts the
        process when a module or one of ``extra_files`` changes, ignoring
        ``exclude_patterns``; ``ssl_context`` is a ``(cert_file, key_file)``
        pair, ``"adhoc"`` or an :class:`ssl.SSLContext`. Other keyword
        arguments go to :class:`uvicorn.Config` (``workers`` needs ``flask
        aiorun``). Does nothing under the ``flask`` command, like Flask's.

        ``server="granian"`` serves with granian instead (its options go to
        :class:`granian.Granian`).
        """
        if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
            return
        if load_dotenv:
            flask.cli.load_dotenv()
            if "FLASK_DEBUG" in os.environ:
                self.debug = get_debug_flag()
        if debug is not None:
            self.debug = bool(debug)
        host, port = server_address(self, host, port)
        debugger = options.pop("use_debugger", self.debug)
        reload = options.pop("use_reloader", self.debug)
        for werkzeug_only in ("threaded", "processes", "use_evalex", "passthrough_errors"):
            options.pop(werkzeug_only, None)
        show_server_banner(self.debug, self.name)
        run_server(self, host=host, port=port, reload=reload, debugger=debugger, **options)

    def make_response(self, rv: Any) -> flask.Response:
        """Flask's ``make_response``, also taking an async iterable as the body."""
        if type(rv) is str or type(rv) is bytes:
            # What Flask does with them: self.response_class(rv), then nothing more.
            made = new_response(self.response_class, rv)
            if made is not None:
                return made
        if type(rv) is dict or type(rv) is list:
            # What Flask does with them: self.json.response(rv), then nothing more.
            response = self._json_response(rv)
            if response is not None:
                return response
        body = rv[0] if isinstance(rv, tuple) and rv else rv
        if isinstance(body, Awaiting):  # `return render_template(...)` in async code
            raise body.misused()
        if type(body) is not str and type(body) is not bytes and hasattr(body, "__aiter__"):
            body = sync_body(body)
            rv = (body, *rv[1:]) if isinstance(rv, tuple) else body
        return super().make_response(rv)

    # The WebSocket hooks of a handshake: the view runs them (see handshake.py).

    def handle_exception(self, e: Exception) -> flask.Response:
        """Flask's ``handle_exception``; for a WebSocket handshake,
        :data:`~aioflask.got_websocket_exception` is sent first."""
        ws = handshake_connection()
        if ws is not None and ws.dispatched:
            got_websocket_exception.send(self, _async_wrapper=self.ensure_sync, exception=e)
        return super().handle_exception(e)

    def do_teardown_websocket(self, exc: BaseException | None) -> None:
        """Call the ``teardown_websocket`` functions, then send
        :data:`~aioflask.websocket_tearing_down`; called when a handshake's
        request context is popped, before :meth:`do_teardown_request`.

        .. versionadded:: 0.5
        """
        do_teardown_websocket(self, exc)

    @setupmethod
    def websocket(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register a WebSocket handler for a URL rule, like :meth:`route`.

        The handler may be ``async def`` or sync; it talks to the client
        through :data:`~aioflask.websocket`. Its handshake is a ``GET`` request
        that Flask dispatches as usual (converters, ``before_request`` hooks
        that may refuse it, ``g``, ``session``, error handlers, teardown)::

            @app.websocket("/ws/<room>")
            async def chat(room):
                await websocket.accept()
                async for message in websocket:
                    await websocket.send(f"{room}: {message}")

        A handshake the handler does not accept is refused with the response
        it returns (or ``403``). ``url_for`` builds ``ws://`` (``wss://``) URLs
        for these rules.

        .. versionadded:: 0.5
        """
        return websocket_route(self, rule, options)

    def add_background_task(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Call ``func(*args, **kwargs)`` in the background, after the response.

        ``func`` may be ``async def`` (it runs on the event loop) or sync (on
        the bridge, so it can :func:`~aioflask.await_`; mark it with
        :func:`~aioflask.in_thread` if it blocks). It runs in an app context of
        its own: ``current_app`` and a fresh ``g``, no request or session, so
        pass what it needs as arguments. Context variables set by the caller
        are copied, except Flask's.

        Added during an HTTP request, it starts once the response is sent;
        elsewhere (a WebSocket handler, a serving hook, another task) at
        once. An exception is logged with :attr:`logger`. Running tasks are
        awaited at lifespan shutdown, for ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT``
        seconds at most, then cancelled. Where no event loop runs (WSGI mode,
        the CLI), ``func`` is called before this returns.

        .. versionadded:: 0.5
        """
        self.background_tasks.add(func, *args, **kwargs)


def _flask_url_adapter(app: Flask, request: flask.Request) -> MapAdapter | None:
    """The URL adapter as Flask's ``create_url_adapter`` makes it."""
    return super(Flask, app).create_url_adapter(request)
