"""Blueprints with WebSocket routes, whose CLI commands may be ``async def``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask
from flask.sansio.scaffold import setupmethod

from .cli import AppGroup
from .handshake import websocket_route

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
