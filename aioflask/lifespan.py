"""The ASGI ``lifespan`` protocol: serving hooks run at startup and shutdown."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core.bridge import run_sync
from .core.types import LifespanScope, Receive, Send

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["run_serving_hooks", "serve_lifespan"]


def run_serving_hooks(app: Flask, funcs: list[Callable[[], Any]]) -> None:
    """Call serving hooks in order, in an app context (on the bridge)."""
    with app.app_context():
        for func in funcs:
            app.ensure_sync(func)()


async def serve_lifespan(app: Flask, scope: LifespanScope, receive: Receive, send: Send) -> None:
    """Answer ``lifespan.startup`` and ``lifespan.shutdown`` for ``app``.

    A hook that raises is logged and reported to the server as
    ``lifespan.startup.failed`` (the server then stops) or
    ``lifespan.shutdown.failed``.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            phase, funcs = "startup", app.before_serving_funcs
        elif message["type"] == "lifespan.shutdown":
            phase, funcs = "shutdown", app.after_serving_funcs
        else:  # pragma: no cover - the spec has no other message
            continue
        try:
            if phase == "shutdown":
                # Before the hooks: background tasks may need what they close.
                await app.background_tasks.drain()
            await run_sync(run_serving_hooks, app, funcs)
        except Exception:
            app.logger.exception("Error in lifespan %s", phase)
            text = traceback.format_exc()
            failed: Any = {"type": f"lifespan.{phase}.failed", "message": text}
            await send(failed)
            if phase == "startup":
                return
        else:
            complete: Any = {"type": f"lifespan.{phase}.complete"}
            await send(complete)
        if phase == "shutdown":
            app.shutdown_thread_pool()  # after the hooks, which may use it
            return
