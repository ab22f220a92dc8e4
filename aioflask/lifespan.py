"""Serving hooks: ``before_serving``, ``while_serving`` generators, ``after_serving``,
and the lifespan state they fill.

The order of startup and shutdown is the application's (``Flask.startup`` and
``Flask.shutdown``); this module registers the hooks and runs the generators'
halves when told.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from inspect import (
    isasyncgen,
    isasyncgenfunction,
    iscoroutinefunction,
    isfunction,
    isgenerator,
    isgeneratorfunction,
)
from typing import TYPE_CHECKING, Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from .core.bridge import await_
from .core.lifespan import State, lifespan_state
from .threads import THREAD_MARK, run_blocking

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["ServingGenerators", "ServingHooks", "check_generator_function"]

F = TypeVar("F", bound=Callable[..., Any])

#: What a step returns when the generator has ended.
_END: Any = object()


def check_generator_function(func: Callable[..., Any]) -> None:
    """Refuse, at registration, a plain function where a generator function is due."""
    if isgeneratorfunction(func) or isasyncgenfunction(func) or hasattr(func, "__wrapped__"):
        return  # (a decorated function is checked when it is called)
    if iscoroutinefunction(func) or isfunction(func):
        raise TypeError(
            f"while_serving takes a generator function, and {_name(func)} has no 'yield':"
            " write the startup code, then 'yield', then the shutdown code (or use"
            " before_serving and after_serving)."
        )


class ServingGenerators:
    """The ``while_serving`` generators of one app, from startup to shutdown."""

    def __init__(self) -> None:
        # (No reference to the app: an app is freed at zero refcount, without a cycle.)
        #: The generators past their ``yield``, with their functions.
        self.running: list[tuple[Callable[..., Any], Any]] = []

    def start(self, app: Flask, funcs: list[Callable[..., Any]]) -> None:
        """Run each generator to its ``yield``, in order (on the bridge, in an app context).

        If one fails, those already started are closed (their ``finally``
        blocks run, newest first) and the error is raised.
        """
        for func in funcs:
            try:
                gen = func()
                if not (isgenerator(gen) or isasyncgen(gen)):
                    raise TypeError(
                        f"while_serving function {_name(func)} returned {type(gen).__name__},"
                        " not a generator: it needs a 'yield' between startup and shutdown."
                    )
                if not _step(app, func, gen):
                    raise RuntimeError(
                        f"while_serving function {_name(func)} ended without yielding:"
                        " it must 'yield' once, between startup and shutdown."
                    )
            except BaseException:
                self.close()
                raise
            self.running.append((func, gen))

    def stop(self, app: Flask) -> None:
        """Run each generator past its ``yield`` to its end, in the order they started.

        Every generator gets its turn; the first error is raised afterwards.
        A generator that yields again is closed, and is an error.
        """
        running, self.running = self.running, []
        error: BaseException | None = None
        for func, gen in running:
            try:
                if _step(app, func, gen):
                    _close(gen)
                    raise RuntimeError(
                        f"while_serving function {_name(func)} yielded more than once: it"
                        " must 'yield' exactly once (startup code before, shutdown code after)."
                    )
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def close(self) -> None:
        """Close the started generators without running their shutdown code, newest first."""
        running, self.running = self.running, []
        for _, gen in reversed(running):
            _close(gen)


class ServingHooks(flask.Flask):
    """The serving hooks of :class:`aioflask.Flask` (one of its base classes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Called (in order, in an app context) when the server starts serving.
        self.before_serving_funcs: list[Callable[[], Any]] = []
        #: Called (in order, in an app context) when the server shuts down.
        self.after_serving_funcs: list[Callable[[], Any]] = []
        #: Generator functions run to their ``yield`` at startup, past it at shutdown.
        self.while_serving_funcs: list[Callable[[], Any]] = []
        self._serving_generators = ServingGenerators()

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

    @setupmethod
    def while_serving(self, f: F) -> F:
        """Register a generator function around serving: the code before its
        ``yield`` runs at startup, the code after it at shutdown::

            @app.while_serving
            async def pool():
                app.extensions["pool"] = await create_pool()
                yield
                await app.extensions["pool"].close()

        Sync or ``async def``, it runs in an app context, after the
        :meth:`before_serving` functions at startup and after the
        :meth:`after_serving` functions at shutdown. A failure before the
        ``yield`` stops the server as a ``before_serving`` failure does; a
        generator that yields more than once is an error. Each server start
        calls the function anew.

        .. versionadded:: 0.5
        """
        check_generator_function(f)
        self.while_serving_funcs.append(f)
        return f

    @property
    def lifespan_state(self) -> State:
        """The ASGI lifespan ``state`` of the server starting or stopping the app.

        Set what requests need in a serving hook; the server copies it into
        every request, where :attr:`Request.state <aioflask.Request.state>`
        reads it::

            @app.while_serving
            async def pool():
                app.lifespan_state.pool = await create_pool()
                yield
                await app.lifespan_state.pool.close()

        Unlike ``app.extensions``, each server running the app (embedded
        servers, test clients) has its own state.

        :raise RuntimeError: outside :meth:`before_serving`,
            :meth:`while_serving` and :meth:`after_serving` functions run
            by a server, or the server sends no state.

        .. versionadded:: 0.5
        """
        return lifespan_state()


def _step(app: Flask, func: Callable[..., Any], gen: Any) -> bool:
    """Run ``gen`` to its next ``yield``: ``False`` when it ended instead."""
    if isasyncgen(gen):
        return await_(anext(gen, _END)) is not _END
    step: Callable[[], Any] = partial(next, gen, _END)
    # A sync generator follows the rule of sync hooks: in a worker thread
    # when marked with in_thread or when AIOFLASK_SYNC_IN_THREAD is set.
    if app.config["AIOFLASK_SYNC_IN_THREAD"] or getattr(func, THREAD_MARK, False):
        step = run_blocking(step, lambda: app.thread_pool)
    return step() is not _END


def _close(gen: Any) -> None:
    if isasyncgen(gen):
        await_(gen.aclose())
    else:
        gen.close()


def _name(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__qualname__', func)!r}"
