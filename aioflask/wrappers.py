"""Request and response objects: Flask's, with async iterables as bodies."""

from __future__ import annotations

from typing import Any

import flask

from .bridge import iterate

__all__ = ["Request", "Response", "sync_body"]

Request = flask.Request


def sync_body(body: Any) -> Any:
    """Adapt an async iterable body to a sync iterator (others pass through)."""
    if hasattr(body, "__aiter__") and not hasattr(body, "__iter__"):
        return iterate(body)
    return body


class Response(flask.Response):
    """Flask's :class:`~flask.Response`, also accepting an async iterable body.

    An async generator (or any async iterable) is iterated one item per
    :func:`~aioflask.await_` while the response is sent; it is closed
    (``aclose()``) when the response is closed, including on client disconnect.

    .. versionadded:: 0.5
    """

    def __init__(self, response: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(sync_body(response), *args, **kwargs)
