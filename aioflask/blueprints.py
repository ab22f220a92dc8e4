"""Blueprints with WebSocket routes and hooks, whose CLI commands may be ``async def``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from .cli import AppGroup
from .handshake import WebSocketHooks, hooks_of, register_blueprint_hooks, websocket_route

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
    def before_app_websocket(self, f: F) -> F:
        """Like :meth:`before_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        self.record_once(lambda s: hooks_of(s.app, "before_websocket_funcs")[None].append(f))
        return f

    @setupmethod
    def after_app_websocket(self, f: F) -> F:
        """Like :meth:`after_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        self.record_once(lambda s: hooks_of(s.app, "after_websocket_funcs")[None].append(f))
        return f

    @setupmethod
    def teardown_app_websocket(self, f: F) -> F:
        """Like :meth:`teardown_websocket`, for every WebSocket route of the app.

        .. versionadded:: 0.5
        """
        self.record_once(lambda s: hooks_of(s.app, "teardown_websocket_funcs")[None].append(f))
        return f
