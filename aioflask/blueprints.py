"""Blueprints with WebSocket routes and serving hooks, whose CLI commands may be ``async def``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from .cli import AppGroup
from .handshake import websocket_route
from .lifespan import check_generator_function

__all__ = ["Blueprint"]

F = TypeVar("F", bound=Callable[..., Any])


class Blueprint(flask.Blueprint):
    """Flask's :class:`~flask.Blueprint`; ``bp.cli`` takes ``async def`` commands.

    .. versionadded:: 0.5
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli = AppGroup()

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
