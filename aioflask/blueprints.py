"""Blueprints with WebSocket routes, WebSocket and serving hooks, and ``async def`` CLI commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from .cli import AppGroup
from .handshake import WebSocketHooks, hooks_of, register_blueprint_hooks, websocket_route
from .lifespan import check_generator_function

__all__ = ["Blueprint"]

F = TypeVar("F", bound=Callable[..., Any])


class Blueprint(WebSocketHooks, flask.Blueprint):
    """Flask's :class:`~flask.Blueprint`; ``bp.cli`` takes ``async def`` commands.

    Its ``before_websocket``, ``after_websocket`` and ``teardown_websocket``
    functions run for its own WebSocket routes, as its ``before_request``
    functions run for its own views; ``before_app_websocket``,
    ``after_app_websocket`` and ``teardown_app_websocket`` register them on
    the app, for every WebSocket route.

    .. versionadded:: 0.5
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli = AppGroup()
        self.record(functools.partial(register_blueprint_hooks, self))

    @setupmethod
    def websocket(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Register a WebSocket handler, like :meth:`aioflask.Flask.websocket`.

        .. versionadded:: 0.5
        """
        return websocket_route(self, rule, options)

    @setupmethod
    def before_app_serving(self, f: F) -> F:
        """Register a function to run when the server starts serving the app,
        like :meth:`aioflask.Flask.before_serving`.

        .. versionadded:: 0.5
        """
        return self._on_app("before_serving", f)

    @setupmethod
    def after_app_serving(self, f: F) -> F:
        """Register a function to run when the server shuts down, like
        :meth:`aioflask.Flask.after_serving`.

        .. versionadded:: 0.5
        """
        return self._on_app("after_serving", f)

    @setupmethod
    def while_app_serving(self, f: F) -> F:
        """Register a generator function around serving the app, like
        :meth:`aioflask.Flask.while_serving`.

        .. versionadded:: 0.5
        """
        check_generator_function(f)
        return self._on_app("while_serving", f)

    def _on_app(self, method: str, f: F) -> F:
        """Call the app's ``method`` with ``f`` when the blueprint is first registered."""
        self.record_once(lambda state: getattr(state.app, method)(f))
        return f

    @setupmethod
    def before_app_websocket(self, f: F) -> F:
        """Like :meth:`before_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        return self._on_app_hooks("before_websocket_funcs", f)

    @setupmethod
    def after_app_websocket(self, f: F) -> F:
        """Like :meth:`after_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        return self._on_app_hooks("after_websocket_funcs", f)

    @setupmethod
    def teardown_app_websocket(self, f: F) -> F:
        """Like :meth:`teardown_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        return self._on_app_hooks("teardown_websocket_funcs", f)

    def _on_app_hooks(self, attribute: str, f: F) -> F:
        """Add ``f`` to the app's hooks ``attribute`` for every route, when first registered."""
        self.record_once(lambda state: hooks_of(state.app, attribute)[None].append(f))
        return f
