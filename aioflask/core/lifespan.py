"""The ASGI ``lifespan`` protocol: messages in, :meth:`startup`/:meth:`shutdown` calls out.

:class:`LifespanConnection` only translates: the order of what happens at
startup and shutdown (serving hooks, draining background tasks, the thread
pool) is the application's (``app.startup()`` and ``app.shutdown()``).
"""

from __future__ import annotations

import enum
import traceback
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

from .types import LifespanScope, Receive, Send

__all__ = [
    "Lifecycle",
    "LifespanConnection",
    "LifespanError",
    "LifespanState",
    "State",
    "lifespan_state",
    "scope_state",
]

#: The lifespan scope whose startup or shutdown is running (in its task).
_lifespan_scope: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "aioflask_lifespan_scope", default=None
)
_MISSING: Any = object()


class LifespanError(RuntimeError):
    """The app failed to start or stop: a serving hook raised; the message is
    the one the app sent the server (its traceback).

    .. versionadded:: 0.5
    """


class Lifecycle(Protocol):
    """What a lifespan connection drives: an application's startup and shutdown."""

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


class LifespanState(enum.Enum):
    """Where a :class:`LifespanConnection` is in its lifecycle."""

    #: Waiting for ``lifespan.startup``.
    IDLE = "idle"
    #: Started: serving until ``lifespan.shutdown``.
    STARTED = "started"
    #: Shut down, or failed to start: the connection is over.
    ENDED = "ended"


class LifespanConnection:
    """The ASGI ``lifespan`` connection of an application.

    ``lifespan.startup`` awaits ``app.startup()``, ``lifespan.shutdown``
    awaits ``app.shutdown()``; an exception is reported to the server as
    ``lifespan.startup.failed`` (the server then stops) or
    ``lifespan.shutdown.failed``, with its traceback.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Lifecycle, scope: LifespanScope, receive: Receive, send: Send) -> None:
        self.app = app
        self.scope = scope
        self._receive = receive
        self._send = send
        self.state = LifespanState.IDLE

    async def __call__(self) -> None:
        # The hooks reach the scope's state through lifespan_state().
        token = _lifespan_scope.set(self.scope)
        started: dict[str, Any] = {}
        try:
            while self.state is not LifespanState.ENDED:
                message = await self._receive()
                if message["type"] == "lifespan.startup":
                    ok = await self._call("startup", self.app.startup)
                    self.state = LifespanState.STARTED if ok else LifespanState.ENDED
                    started = dict(self.scope.get("state") or {})
                elif message["type"] == "lifespan.shutdown":
                    if started and not self.scope.get("state"):
                        # granian empties the state before lifespan.shutdown: the
                        # shutdown hooks get what startup left in it.
                        _lifespan_scope.set({**self.scope, "state": started})
                    await self._call("shutdown", self.app.shutdown)
                    self.state = LifespanState.ENDED
        finally:
            _lifespan_scope.reset(token)

    async def _call(self, phase: str, method: Any) -> bool:
        try:
            await method()
        except Exception:
            failed: Any = {"type": f"lifespan.{phase}.failed", "message": traceback.format_exc()}
            await self._send(failed)
            return False
        complete: Any = {"type": f"lifespan.{phase}.complete"}
        await self._send(complete)
        return True


class State:
    """Attribute access to an ASGI ``state`` dict, like Flask's ``g``.

    ``state.pool = pool`` stores ``"pool"`` in the dict; ``state.pool`` reads
    it; ``get``, ``pop``, ``setdefault``, ``in`` and iteration work as on
    ``g``. What the lifespan's state holds at the end of startup, servers
    copy (shallowly) into every request's scope.

    .. versionadded:: 0.5
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"The lifespan state has no {name!r}. Set it while the server starts"
                f" (app.lifespan_state.{name} = ... in a before_serving or while_serving"
                " function); in tests, run the lifespan: 'with client.lifespan():'."
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default``."""
        return self._data.get(name, default)

    def pop(self, name: str, default: Any = _MISSING) -> Any:
        """Remove ``name`` and return its value (``default`` if it is missing)."""
        if default is _MISSING:
            return self._data.pop(name)
        return self._data.pop(name, default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, set to ``default`` first if it is missing."""
        return self._data.setdefault(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __repr__(self) -> str:
        return f"<State {self._data!r}>"


def scope_state(scope: Mapping[str, Any]) -> State:
    """The :class:`State` of an ASGI scope (``scope["state"]``).

    :raise RuntimeError: the server sends no state.
    """
    data = scope.get("state")
    if data is None:
        raise RuntimeError(
            "The ASGI server provides no lifespan state (no 'state' in the scope):"
            " serve with one that does (uvicorn 0.21.1 or later, granian, hypercorn)."
        )
    return State(data)


def lifespan_state() -> State:
    """The :class:`State` of the lifespan whose startup or shutdown is running.

    :raise RuntimeError: no lifespan startup or shutdown is running here, or
        the server sends no state.
    """
    scope = _lifespan_scope.get()
    if scope is None:
        raise RuntimeError(
            "The lifespan state can be reached only while an ASGI server starts or"
            " stops the app (in before_serving, while_serving and after_serving"
            " functions). In a request or WebSocket handler, use request.state."
        )
    return scope_state(scope)
