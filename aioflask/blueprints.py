"""Blueprints whose CLI commands may be ``async def``."""

from __future__ import annotations

from typing import Any

import flask

from .cli import AppGroup

__all__ = ["Blueprint"]


class Blueprint(flask.Blueprint):
    """Flask's :class:`~flask.Blueprint`; ``bp.cli`` takes ``async def`` commands.

    .. versionadded:: 0.5
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cli = AppGroup()
