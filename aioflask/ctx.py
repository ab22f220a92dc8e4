"""Flask's contexts, also usable with ``async with``; the context of a WebSocket handshake."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import flask.ctx

from ._compat import AppContextSignals
from .core.bridge import run_sync
from .core.websocket import ENVIRON_KEY

if TYPE_CHECKING:
    from .websockets import WebSocket

__all__ = ["AppContext", "RequestContext", "WebSocketContext"]

_UNSET: Any = object()

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


class AppContext(_AsyncWith, AppContextSignals):
    """Flask's app context; ``async with app.app_context():`` works too.

    .. versionadded:: 0.5
    """


class RequestContext(_AsyncWith, flask.ctx.RequestContext):
    """Flask's request context; ``async with app.test_request_context():`` too.

    .. versionadded:: 0.5
    """


class WebSocketContext(RequestContext):
    """The request context of a WebSocket handshake (what ``app.request_context``
    makes for one); on its last pop, the ``teardown_websocket`` functions run
    if the handshake reached its WebSocket route, before Flask's
    ``teardown_request`` functions.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Any, environ: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(app, environ, *args, **kwargs)
        #: The connection of the handshake.
        self.websocket: WebSocket = environ[ENVIRON_KEY]
        self.websocket.request = self.request
        self._pushed = 0

    def push(self) -> None:
        super().push()
        self._pushed += 1

    def pop(self, exc: BaseException | None = _UNSET) -> None:
        if exc is _UNSET:
            exc = sys.exc_info()[1]
        try:
            # The last pop, when Flask tears the request down too.
            if self._pushed == 1 and self.websocket.dispatched:
                self.app.do_teardown_websocket(exc)  # type: ignore[attr-defined]
        finally:
            self._pushed = max(self._pushed - 1, 0)
            super().pop(exc)
