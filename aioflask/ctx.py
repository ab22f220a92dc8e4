"""Flask's contexts, also usable with ``async with``; the context of a WebSocket handshake."""

from __future__ import annotations

import contextvars
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import flask.ctx

from ._compat import current_object
from .core.bridge import run_sync
from .core.websocket import ENVIRON_KEY

if TYPE_CHECKING:
    from .websockets import WebSocket

__all__ = ["HANDSHAKE", "AppContext", "RequestContext", "WebSocketContext", "current_handshake"]

_UNSET: Any = object()

#: The connection of the WebSocketContext pushed last in this context, if any:
#: ``HANDSHAKE.get() is None`` tells an HTTP request at the cost of a lookup.
HANDSHAKE: contextvars.ContextVar[WebSocket | None] = contextvars.ContextVar(
    "aioflask.handshake", default=None
)

_C = TypeVar("_C", bound="_AsyncWith")


class _AsyncWith:
    """``async with`` for a context with ``push()`` and ``pop(exc)``.

    Pushing and popping run on the bridge, so ``async def`` teardown functions
    and signal receivers are awaited. Both happen in the caller's context
    variables, as with ``with`` (a ContextVar token is reset where it was set).
    """

    push: Any
    pop: Any

    async def __aenter__(self: _C) -> _C:
        await run_sync(self.push)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await run_sync(self.pop, exc_value)


class AppContext(_AsyncWith, flask.ctx.AppContext):
    """Flask's app context; ``async with app.app_context():`` works too.

    .. versionadded:: 0.5
    """


class RequestContext(_AsyncWith, flask.ctx.RequestContext):
    """Flask's request context; ``async with app.test_request_context():`` too.

    .. versionadded:: 0.5
    """


class WebSocketContext(RequestContext):
    """The request context of a WebSocket handshake (what ``app.request_context``
    makes for one); on its last pop, the ``teardown_websocket`` functions run,
    before Flask's ``teardown_request`` functions.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Any, environ: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(app, environ, *args, **kwargs)
        #: The connection of the handshake.
        self.websocket: WebSocket = environ[ENVIRON_KEY]
        self.websocket.request = self.request
        self._handshake_tokens: list[contextvars.Token[WebSocket | None]] = []

    def push(self) -> None:
        super().push()
        self._handshake_tokens.append(HANDSHAKE.set(self.websocket))

    def pop(self, exc: BaseException | None = _UNSET) -> None:
        if exc is _UNSET:
            exc = sys.exc_info()[1]
        tokens = self._handshake_tokens
        try:
            if len(tokens) == 1:  # the last pop, when Flask tears down too
                self.app.do_teardown_websocket(exc)  # type: ignore[attr-defined]
        finally:
            if tokens:  # none if push() failed
                HANDSHAKE.reset(tokens.pop())
            super().pop(exc)


def current_handshake() -> WebSocket | None:
    """The connection if the current request is a WebSocket handshake, else ``None``.

    ``websockets.handshake_connection()`` answers the same from the request's
    environ, at ~4,000 instructions a call: too many for what the app asks at
    every request (see :data:`HANDSHAKE`).
    """
    ws = HANDSHAKE.get()
    if ws is None:
        return None
    try:
        # An HTTP request context pushed inside a WebSocket handler is not a handshake.
        return ws if ws.request is current_object(flask.request) else None
    except RuntimeError:
        return None
