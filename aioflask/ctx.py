"""Flask's contexts, also usable with ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar

import flask.ctx

from ._compat import AppContextSignals
from .core.bridge import run_sync

__all__ = ["AppContext", "RequestContext"]

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
