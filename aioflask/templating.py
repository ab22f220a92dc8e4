"""Jinja in async mode: ``await render_template()``; Flask's sync API still works.

The app's Jinja environment is async-enabled, so templates may call async
functions. Jinja's own sync ``render()`` on an async environment would call
``asyncio.run()``, which fails under a running loop; here it waits through the
bridge instead, so Flask's ``flask.render_template`` (which extensions call)
keeps working inside a request, and on a private loop outside one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import flask
import flask.templating
import jinja2

from .bridge import await_, iterate, run_sync

if TYPE_CHECKING:
    from .app import Flask

__all__ = [
    "Environment",
    "Template",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
]


class Template(jinja2.Template):
    """A Jinja template whose sync API works on an async environment."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if not self.environment.is_async:
            return super().render(*args, **kwargs)
        return await_(self.render_async(*args, **kwargs))

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        if not self.environment.is_async:
            return super().generate(*args, **kwargs)
        return iterate(self.generate_async(*args, **kwargs))

    def _get_default_module(self, ctx: Any = None) -> Any:
        # Template.module (and so get_template_attribute) in async mode.
        if not self.environment.is_async:
            return super()._get_default_module(ctx)
        return await_(self._get_default_module_async(ctx))


class Environment(flask.templating.Environment):
    """Flask's Jinja environment, async-enabled, with :class:`Template`.

    Set ``app.jinja_options = {"enable_async": False}`` (before the environment
    is first used) for a sync-only environment.
    """

    template_class = Template

    def __init__(self, app: Flask, **options: Any) -> None:
        options.setdefault("enable_async", True)
        super().__init__(app, **options)


async def render_template(
    template_name_or_list: str | jinja2.Template | list[str | jinja2.Template],
    **context: Any,
) -> str:
    """Render a template by name with the given context (awaitable).

    Flask's :func:`flask.render_template`, awaited: context processors and
    the ``before_render_template`` / ``template_rendered`` signals run as in
    Flask, and may be ``async def``.

    .. versionadded:: 0.5
    """
    return await run_sync(flask.render_template, template_name_or_list, **context)


async def render_template_string(source: str, **context: Any) -> str:
    """Render a template from a source string with the given context (awaitable).

    .. versionadded:: 0.5
    """
    return await run_sync(flask.render_template_string, source, **context)


async def _aiterate(iterator: Iterator[str]) -> AsyncIterator[str]:
    # Each item is produced on the bridge: the template may await, and the
    # request context kept by stream_with_context stays in this task.
    sentinel = object()
    try:
        while (item := await run_sync(next, iterator, sentinel)) is not sentinel:
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await run_sync(close)


async def stream_template(
    template_name_or_list: str | jinja2.Template | list[str | jinja2.Template],
    **context: Any,
) -> AsyncIterator[str]:
    """Render a template by name as a stream: an async iterator of strings.

    Return it from a view to stream the response; the request context stays
    available while it renders.

    .. versionadded:: 0.5
    """
    it = await run_sync(flask.stream_template, template_name_or_list, **context)
    return _aiterate(it)


async def stream_template_string(source: str, **context: Any) -> AsyncIterator[str]:
    """Render a template from a source string as an async iterator of strings.

    .. versionadded:: 0.5
    """
    it = await run_sync(flask.stream_template_string, source, **context)
    return _aiterate(it)
