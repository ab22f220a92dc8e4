"""The WebSocket handshake as a Flask request: routes and the view that runs a handler.

The handshake of an ASGI ``websocket`` connection is dispatched by Flask as a
``GET`` request whose URL scheme is ``ws`` or ``wss``; Werkzeug then matches
only rules added with ``websocket=True`` (what ``@app.websocket`` adds), so
converters, ``url_for``, blueprints, ``before_request`` hooks, error handlers
and teardown work as for any request. The handler runs in the view's place
and talks to the client through :data:`~aioflask.websocket` while that request
context is pushed.

The WebSocket hooks (``before_websocket``, ``after_websocket``,
``teardown_websocket``, as Quart has them) and signals run when a handshake
reaches its WebSocket route, nested inside Flask's request hooks, which run
for every request (and may refuse the handshake first)::

    request_started
    url_value_preprocessor..., before_request...
        websocket_started, before_websocket...        (the view, from here)
        the handler
        after_this_websocket..., after_websocket..., websocket_finished
    after_this_request..., after_request..., request_finished
        teardown_websocket..., websocket_tearing_down
    teardown_request..., request_tearing_down

The view starts them (:func:`start_websocket`); the after functions run as
the handshake's first ``after_this_request`` function, so that they see the
error handler's response too; the handshake's request context
(:class:`~aioflask.ctx.WebSocketContext`) calls :func:`do_teardown_websocket`
when it is popped. An HTTP request pays nothing for any of it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from ._compat import current_object
from .signals import websocket_finished, websocket_started, websocket_tearing_down
from .websockets import ENVIRON_KEY, WebSocket, call_handler, current_websocket

if TYPE_CHECKING:
    from flask.sansio.blueprints import BlueprintSetupState
    from flask.sansio.scaffold import Scaffold

__all__ = [
    "WebSocketHooks",
    "do_teardown_websocket",
    "hooks_of",
    "register_blueprint_hooks",
    "start_websocket",
    "websocket_route",
]

F = TypeVar("F", bound=Callable[..., Any])
#: Functions by blueprint name (``None``: the app's), as Flask keeps its hooks.
Hooks = dict["str | None", list[Callable[..., Any]]]


class _HandshakeView:
    """The view Flask dispatches to for a WebSocket rule; runs the handler."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.handler = handler
        functools.update_wrapper(self, handler)

    def __eq__(self, other: object) -> bool:
        # A handler registered for several rules is the same endpoint function.
        return isinstance(other, _HandshakeView) and other.handler == self.handler

    def __hash__(self) -> int:
        return hash(self.handler)

    def __call__(self, **kwargs: Any) -> Any:
        if ENVIRON_KEY not in flask.request.environ:
            # A WebSocket handshake that reached the app through WSGI.
            flask.abort(
                501,
                "WebSockets need an ASGI server: serve this app with 'flask aiorun'"
                " or 'uvicorn module:app', not through WSGI.",
            )
        ws = current_websocket()
        app = current_object(flask.current_app)  # signals are sent by the app itself
        rv = start_websocket(app, ws)
        if rv is None:
            rv = call_handler(self.handler, kwargs)
        if ws.accepted:
            # The handshake response went out at accept(); after_request sees this.
            return app.response_class(status=101)
        if ws.closed or rv is None:
            return app.response_class(status=403)
        return rv


def websocket_route(scaffold: Scaffold, rule: str, options: dict[str, Any]) -> Callable[[F], F]:
    """The decorator of ``app.websocket(rule, **options)`` and ``bp.websocket``."""

    def decorator(f: F) -> F:
        endpoint = options.pop("endpoint", None)
        options.setdefault("provide_automatic_options", False)
        scaffold.add_url_rule(rule, endpoint, _HandshakeView(f), websocket=True, **options)
        return f

    return decorator


class WebSocketHooks:
    """The WebSocket hooks of an app or a blueprint (a mixin of Flask's scaffolds).

    Registered like Flask's request hooks; a blueprint's run for its own
    WebSocket routes only (its ``*_app_websocket`` twins for every route).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``before_websocket`` functions by blueprint name (``None``: the app's).
        self.before_websocket_funcs: Hooks = defaultdict(list)
        #: ``after_websocket`` functions by blueprint name (``None``: the app's).
        self.after_websocket_funcs: Hooks = defaultdict(list)
        #: ``teardown_websocket`` functions by blueprint name (``None``: the app's).
        self.teardown_websocket_funcs: Hooks = defaultdict(list)

    @setupmethod
    def before_websocket(self, f: F) -> F:
        """Register a function to run before each WebSocket handler.

        It runs after the ``before_request`` functions (which run for the
        handshake too), takes no arguments and may be ``async def``. If it
        returns a value other than ``None``, the handler is not called and the
        handshake is refused with that value as the response, as when a
        ``before_request`` function returns one.

        .. versionadded:: 0.5
        """
        self.before_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def after_websocket(self, f: F) -> F:
        """Register a function to run after each WebSocket handler.

        It gets the handshake's response and returns it: ``None`` if the
        handler accepted the connection (the handshake response went out
        then; what it returns is ignored), else the refusal, which it may
        replace. It runs whether the handler returned, raised (with the
        error handler's response) or a ``before_websocket`` function refused
        the handshake, before the ``after_request`` functions; the connection
        is closed after them. Not when the client went away (the handler is
        cancelled). May be ``async def``.

        .. versionadded:: 0.5
        """
        self.after_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def teardown_websocket(self, f: F) -> F:
        """Register a function to run when a WebSocket handshake request ends.

        It gets the exception that ended the handler unhandled, or ``None``
        (:exc:`asyncio.CancelledError` when the client went away); its return
        value is ignored. It runs before the ``teardown_request`` functions,
        always once the handshake reached its WebSocket route. May be ``async def``.

        .. versionadded:: 0.5
        """
        self.teardown_websocket_funcs[None].append(f)
        return f


def start_websocket(app: flask.Flask, ws: WebSocket) -> Any:
    """Send ``websocket_started`` and call the ``before_websocket`` functions.

    The app's functions first, then each blueprint's, outermost first; the
    first value other than ``None`` is returned (the handler is then not
    called). The ``after_websocket`` functions are set to run with the
    handshake's response.
    """
    ws.dispatched = True
    flask.after_this_request(functools.partial(_finish_websocket, app, ws))
    websocket_started.send(app, _async_wrapper=app.ensure_sync)
    funcs = hooks_of(app, "before_websocket_funcs")
    for name in (None, *reversed(flask.request.blueprints)):
        for f in funcs.get(name, ()):
            rv = app.ensure_sync(f)()
            if rv is not None:
                return rv
    return None


def _finish_websocket(app: flask.Flask, ws: WebSocket, response: flask.Response) -> Any:
    """The ``after_websocket`` functions, as the handshake's first ``after_this_request``.

    They get the handshake's response, ``None`` once accepted (what goes on
    to ``after_request`` is then the 101 response, whatever they return).
    Flask's ``finalize_request`` logs instead of raising what fails here
    while it handles an error, as for any after function.
    """
    result: Any = None if ws.accepted else response
    funcs = hooks_of(app, "after_websocket_funcs")
    for f in ws.after_websocket_functions:
        result = app.ensure_sync(f)(result)
    for name in chain(flask.request.blueprints, (None,)):
        for f in reversed(funcs.get(name, ())):
            result = app.ensure_sync(f)(result)
    if ws.accepted:
        result = None
    elif result is None:
        raise TypeError(
            "An after_websocket function returned None for a refused handshake:"
            " return the response it was given (or another one)."
        )
    websocket_finished.send(app, _async_wrapper=app.ensure_sync, response=result)
    return response if result is None else result


def do_teardown_websocket(app: flask.Flask, exc: BaseException | None) -> None:
    """Call the ``teardown_websocket`` functions, innermost blueprint first, then signal."""
    funcs = hooks_of(app, "teardown_websocket_funcs")
    for name in chain(flask.request.blueprints, (None,)):
        for f in reversed(funcs.get(name, ())):
            app.ensure_sync(f)(exc)
    websocket_tearing_down.send(app, _async_wrapper=app.ensure_sync, exc=exc)


def register_blueprint_hooks(hooks: WebSocketHooks, state: BlueprintSetupState) -> None:
    """Merge a blueprint's WebSocket hooks into the app's, under its (dotted) name.

    What Flask does for the request hooks when a blueprint is registered.
    """
    name = f"{state.name_prefix}.{state.name}".lstrip(".")
    for attr in ("before_websocket_funcs", "after_websocket_funcs", "teardown_websocket_funcs"):
        ours: Hooks = getattr(hooks, attr)
        if not any(ours.values()):
            continue
        theirs = hooks_of(state.app, attr)
        for key, funcs in ours.items():
            theirs[name if key is None else f"{name}.{key}"].extend(funcs)


def hooks_of(app: Any, attr: str) -> Hooks:
    """The app's WebSocket hooks ``attr`` (a clear error for a plain Flask app)."""
    hooks: Hooks | None = getattr(app, attr, None)
    if hooks is None:
        raise TypeError(
            f"{type(app).__name__} has no WebSocket hooks: use aioflask.Flask, not flask.Flask."
        )
    return hooks
