"""The aioflask application: Flask, with an ASGI entry point on the bridge."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from inspect import iscoroutinefunction
from typing import Any, TypeVar

import flask
from asgiref.sync import markcoroutinefunction
from flask.sansio.scaffold import setupmethod
from werkzeug.datastructures import ImmutableDict

from .asgi import serve_http
from .bridge import await_
from .helpers import THREAD_MARK, run_blocking
from .lifespan import serve_lifespan
from .typing import Receive, Scope, Send
from .wrappers import Response, sync_body

__all__ = ["Flask"]

F = TypeVar("F", bound=Callable[..., Any])


class Flask(flask.Flask):
    """A :class:`flask.Flask` that is also an ASGI application.

    Called with ``(scope, receive, send)`` it serves ASGI ``http`` and
    ``lifespan``; called with ``(environ, start_response)`` it is still a WSGI
    application. Flask's dispatch runs in a greenlet on the event loop, and
    ``async def`` views, hooks and handlers are awaited on that loop.

    .. versionadded:: 0.5
    """

    response_class = Response

    default_config = ImmutableDict(
        flask.Flask.default_config,
        # Run every sync view and hook in a worker thread (see in_thread).
        AIOFLASK_SYNC_IN_THREAD=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Called (in order, in an app context) when the server starts serving.
        self.before_serving_funcs: list[Callable[[], Any]] = []
        #: Called (in order, in an app context) when the server shuts down.
        self.after_serving_funcs: list[Callable[[], Any]] = []

    def __call__(self, *args: Any) -> Any:
        """ASGI with three arguments, WSGI with two."""
        if len(args) == 2:
            return self.wsgi_app(*args)
        return self.asgi_app(*args)

    # Servers tell ASGI 3 apps by asking whether __call__ is a coroutine function.
    __call__ = markcoroutinefunction(__call__)

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application; middleware can wrap it like ``wsgi_app``."""
        if scope["type"] == "http":
            await serve_http(self.wsgi_app, scope, receive, send)
        elif scope["type"] == "lifespan":
            await serve_lifespan(self, scope, receive, send)
        elif scope["type"] == "websocket":
            # No WebSocket routes: reject the handshake (the server answers 403).
            await receive()
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
        else:
            raise ValueError(f"aioflask cannot serve ASGI scope type {scope['type']!r}")

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Make ``func`` callable from Flask's sync dispatch.

        Coroutine functions are awaited on the loop through the bridge; sync
        functions run as they are, or in a worker thread when marked with
        :func:`~aioflask.in_thread` or when ``AIOFLASK_SYNC_IN_THREAD`` is set.
        """
        if iscoroutinefunction(func):
            return self.async_to_sync(func)
        if getattr(func, THREAD_MARK, False) or self.config["AIOFLASK_SYNC_IN_THREAD"]:
            return run_blocking(func)
        return func

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """Return a sync function that awaits ``func`` on the event loop.

        Inside a request this suspends the request's greenlet; where no loop
        runs (WSGI mode, the CLI) the coroutine runs on a private loop.
        """

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await_(func(*args, **kwargs))

        return wrapper

    def make_response(self, rv: Any) -> flask.Response:
        """Flask's ``make_response``, also taking an async iterable as the body."""
        if isinstance(rv, tuple):
            if rv:
                rv = (sync_body(rv[0]), *rv[1:])
        else:
            rv = sync_body(rv)
        return super().make_response(rv)

    @setupmethod
    def before_serving(self, f: F) -> F:
        """Register a function to run when the server starts serving.

        It runs in an app context, may be ``async def``, and a failure is
        reported to the server, which then does not start.

        .. versionadded:: 0.5
        """
        self.before_serving_funcs.append(f)
        return f

    @setupmethod
    def after_serving(self, f: F) -> F:
        """Register a function to run when the server shuts down.

        .. versionadded:: 0.5
        """
        self.after_serving_funcs.append(f)
        return f
