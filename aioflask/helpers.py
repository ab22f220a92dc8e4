"""Flask's helpers that aioflask extends: ``stream_with_context`` for async generators."""

from __future__ import annotations

import functools
from typing import Any

import flask

from .wrappers import sync_body

__all__ = ["stream_with_context"]


def stream_with_context(generator_or_function: Any) -> Any:
    """Flask's :func:`~flask.stream_with_context`, also for async generators.

    The request context stays pushed while the body is produced, so an async
    generator can use ``request`` and ``session`` while the response streams.

    .. versionadded:: 0.5
    """
    if callable(generator_or_function) and not hasattr(generator_or_function, "__aiter__"):

        @functools.wraps(generator_or_function)
        def decorator(*args: Any, **kwargs: Any) -> Any:
            return stream_with_context(generator_or_function(*args, **kwargs))

        return decorator
    return flask.stream_with_context(sync_body(generator_or_function))
