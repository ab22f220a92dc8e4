"""Background tasks: work that runs after the response and is drained at shutdown.

:meth:`BackgroundTasks.add` (``app.add_background_task``) called during an
HTTP request hands the call to the request's connection, which starts it once
the response is sent (or the client is gone). Tasks run
on the event loop in an app context of their own, are held in a set (strong
references) until done, log their exceptions, and are drained at lifespan
shutdown (:meth:`BackgroundTasks.drain`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask

from .core.bridge import run_sync
from .core.dual import dual
from .core.http import HTTPConnection
from .signals import got_background_exception

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["BackgroundTasks"]
#: How long cancelled tasks get to finish at shutdown before they are abandoned.
CANCEL_GRACE = 1.0

_Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], contextvars.Context]


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def _task_context() -> contextvars.Context:
    """The caller's context variables, less Flask's contexts (and aioflask's own).

    A task keeps what the caller set (log correlation ids, tracing context)
    but not the request and app contexts, which end with the request: it
    pushes an app context of its own.
    """
    context = contextvars.Context()
    for var, value in contextvars.copy_context().items():
        if not var.name.startswith(("flask.", "aioflask")):
            context.run(var.set, value)
    return context


class BackgroundTasks:
    """The background tasks of an app: ``app.background_tasks``.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Flask) -> None:
        # A weak reference: the app holds this object, and an app must be
        # freed as soon as its last reference goes (no cycle for the GC).
        self._app = weakref.ref(app)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def app(self) -> Flask:
        """The app these tasks belong to."""
        app = self._app()
        if app is None:
            raise RuntimeError("The app of these background tasks was deleted.")
        return app

    def __len__(self) -> int:
        """The number of tasks running now."""
        return len(self._tasks)

    def add(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Call ``func(*args, **kwargs)`` in the background; see
        :meth:`aioflask.Flask.add_background_task`.
        """
        call: _Call = (func, args, kwargs, _task_context())
        if flask.has_request_context():
            connection = flask.request.environ.get(HTTPConnection.environ_key)
            if connection is not None and connection.call_after_response(
                functools.partial(self._start, call)
            ):
                return  # started once the response is sent
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._run_now(call)
        else:
            self._start(call)

    def _start(self, call: _Call) -> None:
        func, args, kwargs, context = call
        loop = asyncio.get_running_loop()
        coro = self._run(func, args, kwargs)
        # The task copies the context current when it is created: `context`.
        task = context.run(loop.create_task, coro, name=f"background task {_name(func)}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        await run_sync(self._call, func, args, kwargs)

    def _run_now(self, call: _Call) -> None:
        """No event loop runs in this thread (WSGI mode, the CLI): call it now."""
        func, args, kwargs, context = call
        context.run(self._call, func, args, kwargs)

    def _call(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        """Call ``func`` in an app context of its own; an exception is sent
        with :data:`~aioflask.got_background_exception`, then logged."""
        # On the bridge: an async func is awaited on the loop, a sync one runs
        # here (or in a worker thread when marked with in_thread).
        app = self.app
        try:
            with app.app_context():
                app.ensure_sync(func)(*args, **kwargs)
        except Exception as exc:
            try:
                # As Quart sends it: after the task's app context is popped.
                got_background_exception.send(app, _async_wrapper=app.ensure_sync, exception=exc)
            except Exception:
                app.logger.exception("Exception in a got_background_exception receiver")
            app.logger.exception("Exception in background task %s", _name(func), exc_info=exc)

    @dual(call="app.background_tasks.wait(...)")
    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until no background task runs, tasks added meanwhile included.

        Awaited in a coroutine; sync code (a sync test) calls it without
        ``await``: there, the tasks run only while something waits.

        :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
        :return: whether all tasks are done.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def drain(self) -> None:
        """Wait for the running tasks, then cancel those still running.

        Waits at most ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT`` seconds (``None``:
        no limit). Cancelled tasks are logged. Called at lifespan shutdown.
        """
        timeout = self.app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"]
        if await self.wait(timeout):
            return
        tasks = set(self._tasks)
        self.app.logger.warning(
            "Cancelling %d background task(s) still running after %s s: %s",
            len(tasks),
            timeout,
            ", ".join(sorted(t.get_name() for t in tasks)),
        )
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        if stuck:
            self.app.logger.error(
                "%d background task(s) did not stop when cancelled: %s",
                len(stuck),
                ", ".join(sorted(t.get_name() for t in stuck)),
            )
