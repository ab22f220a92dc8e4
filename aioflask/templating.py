"""Jinja on the bridge: templates may call async functions; ``await render_template()``.

The app's Jinja environment compiles templates as Jinja's sync mode does (the
fast one) and runs them on the bridge: an awaitable that a template's call
returns is awaited there with :func:`~aioflask.await_`, and an async iterable
it reaches is iterated item by item the same way, so ``{{ load_user() }}`` and
``{% for row in stream_rows() %}`` work as in Jinja's async mode. Flask's sync
API (``flask.render_template``, which extensions call) keeps working inside a
request, and on a private loop outside one.

``app.jinja_options = {"enable_async": True}`` selects Jinja's own async mode
instead; its sync ``render()`` then waits through the bridge too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

import flask
import flask.templating
import jinja2
import jinja2.runtime

from .bridge import await_, iterate, make_sync, run_sync

if TYPE_CHECKING:
    from .app import Flask

__all__ = [
    "Context",
    "Environment",
    "Template",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
]

_PLAIN, _AWAITABLE, _ASYNC_ITERABLE = 0, 1, 2
#: Type -> what a template does with its values (a plain dict: a lookup per value).
_KINDS: dict[type, int] = {}


def _classify(tp: type) -> int:
    if hasattr(tp, "__await__"):
        kind = _AWAITABLE
    elif hasattr(tp, "__aiter__") and not hasattr(tp, "__iter__"):
        kind = _ASYNC_ITERABLE
    else:
        kind = _PLAIN
    if len(_KINDS) < 4096:
        _KINDS[tp] = kind
    return kind


def _kind(value: Any) -> int:
    kind = _KINDS.get(type(value))
    return _classify(type(value)) if kind is None else kind


def _resolve(value: Any) -> Any:
    """What a template sees of a call's result: awaited, or iterable from sync code."""
    kind = _kind(value)
    if kind == _AWAITABLE:
        return await_(value)
    return iterate(value) if kind == _ASYNC_ITERABLE else value


def _iterable(value: Any) -> Any:
    """A value a template looked up: async iterables become sync iterators."""
    return iterate(value) if _kind(value) == _ASYNC_ITERABLE else value


class Context(jinja2.runtime.Context):
    """A template's context: what a template calls may be ``async def``."""

    def call(__self, __obj: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __traceback_hide__ = True
        return _resolve(jinja2.runtime.Context.call(__self, __obj, *args, **kwargs))

    def resolve_or_missing(self, key: str) -> Any:
        return _iterable(jinja2.runtime.Context.resolve_or_missing(self, key))


class _Functions(dict[str, Any]):
    """Filters and tests: ``async def`` ones are awaited where they are called."""

    def __init__(self, functions: dict[str, Any]) -> None:
        super().__init__()
        self.update(functions)

    def __setitem__(self, name: str, func: Any) -> None:
        if iscoroutinefunction(func):
            func = make_sync(func)  # keeps Jinja's pass_context mark (__dict__)
        super().__setitem__(name, func)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, func in dict(*args, **kwargs).items():
            self[name] = func

    def setdefault(self, name: str, func: Any = None) -> Any:
        if name not in self:
            self[name] = func
        return self[name]


class Template(jinja2.Template):
    """A Jinja template whose sync and async APIs both work, in either mode."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if not self.environment.is_async:
            return super().render(*args, **kwargs)
        return await_(self.render_async(*args, **kwargs))

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        if not self.environment.is_async:
            return await run_sync(super().render, *args, **kwargs)
        return await super().render_async(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        if not self.environment.is_async:
            return super().generate(*args, **kwargs)
        return iterate(self.generate_async(*args, **kwargs))

    def generate_async(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str, object]:
        if not self.environment.is_async:
            return _aiterate(super().generate(*args, **kwargs))
        return super().generate_async(*args, **kwargs)

    def _get_default_module(self, ctx: Any = None) -> Any:
        # Template.module (and so get_template_attribute) in async mode.
        if not self.environment.is_async:
            return super()._get_default_module(ctx)
        return await_(self._get_default_module_async(ctx))


class Environment(flask.templating.Environment):
    """Flask's Jinja environment, with :class:`Template` and :class:`Context`.

    Templates may call ``async def`` functions (globals, context values,
    methods, filters and tests) and iterate async iterables; see the module's
    description. Attribute and item lookups hand async iterables to the
    template as sync iterators.
    """

    template_class = Template
    context_class: type[jinja2.runtime.Context] = Context

    def __init__(self, app: Flask, **options: Any) -> None:
        super().__init__(app, **options)
        if self.is_async:
            # Jinja's async mode awaits and iterates by itself.
            self.context_class = jinja2.runtime.Context
        else:
            self.filters = _Functions(self.filters)
            self.tests = _Functions(self.tests)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Jinja's lookup (attribute, else item, else undefined), inlined: this
        # runs for every `a.b` of every template.
        if self.is_async:
            return jinja2.Environment.getattr(self, obj, attribute)
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                value = obj[attribute]
            except (TypeError, LookupError, AttributeError):
                return self.undefined(obj=obj, name=attribute)
        if _KINDS.get(type(value)) == _PLAIN:
            return value
        return _iterable(value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = jinja2.Environment.getitem(self, obj, argument)
        return value if self.is_async else _iterable(value)


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


async def _aiterate(iterator: Iterator[str]) -> AsyncGenerator[str, object]:
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
