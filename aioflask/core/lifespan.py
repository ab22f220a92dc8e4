"""The ASGI ``lifespan`` protocol: messages in, :meth:`startup`/:meth:`shutdown` calls out.

:class:`LifespanConnection` only translates: the order of what happens at
startup and shutdown (serving hooks, draining background tasks, the thread
pool) is the application's (``app.startup()`` and ``app.shutdown()``).
"""

from __future__ import annotations

import enum
import traceback
from typing import Any, Protocol

from .types import LifespanScope, Receive, Send

__all__ = ["Lifecycle", "LifespanConnection", "LifespanState"]


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
        while self.state is not LifespanState.ENDED:
            message = await self._receive()
            if message["type"] == "lifespan.startup":
                ok = await self._call("startup", self.app.startup)
                self.state = LifespanState.STARTED if ok else LifespanState.ENDED
            elif message["type"] == "lifespan.shutdown":
                await self._call("shutdown", self.app.shutdown)
                self.state = LifespanState.ENDED

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
