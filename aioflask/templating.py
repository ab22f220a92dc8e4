"""Jinja on the bridge: templates may call async functions; sync or awaited rendering.

The app's Jinja environment compiles templates as Jinja's sync mode does (the
fast one) and runs them on the bridge: an awaitable that a template's call
returns is awaited there with :func:`~aioflask.await_`, and ``{% for %}``
loops and Jinja's iterating filters go over async iterables item by item the
same way, so ``{{ load_user() }}`` and ``{% for row in stream_rows() %}`` work
as in Jinja's async mode. ``render_template()`` and the others return the
result to sync code and an awaitable to coroutines; Flask's own
(``flask.render_template``, which extensions call) keeps working inside a
request, and on a private loop outside one.

``app.jinja_options = {"enable_async": True}`` selects Jinja's own async mode
instead; its sync ``render()`` then waits through the bridge too.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any

import flask
import flask.templating
import jinja2
import jinja2.compiler
import jinja2.filters
import jinja2.optimizer
import jinja2.runtime
import jinja2.tests
import jinja2.utils
import jinja2.visitor
from jinja2 import nodes
from jinja2.runtime import LoopContext

from . import _compat
from ._compat import AsyncDefaultModule, PassArg
from .core.bridge import await_, iterate, run_sync
from .core.caches import BoundedCache
from .core.dual import dual

if TYPE_CHECKING:
    from .app import Flask

__all__ = [
    "CodeGenerator",
    "Context",
    "Environment",
    "Template",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
    "sync_iterable",
]

#: Flags of a value's type: what a template does with such values.
_AWAITABLE, _ASYNC_ITERABLE = 1, 2
#: Type -> its flags. Saves ~5,200 instructions per value a template sees
#: (1,850 against 7,000: callgrind, 100,000 calls of _kind).
_KINDS: BoundedCache[type, int] = BoundedCache(4096)
#: The types of _KINDS that are not awaitable: what compiled templates look
#: the result of each call, filter and test up in (``type(value) in
#: _NOT_AWAITABLE``, ~550 instructions against ~1,150 for a call of
#: _awaited(): benchmarks/template_steps.py); a type not seen yet takes
#: _awaited(), which classifies it.
_NOT_AWAITABLE: BoundedCache[type, bool] = BoundedCache(4096)


def _classify(tp: type) -> int:
    kind = 0
    if not issubclass(tp, jinja2.Undefined):  # iterates (or fails) the same either way
        if issubclass(tp, Awaitable):  # as inspect.isawaitable: __await__ not None
            kind |= _AWAITABLE
        if hasattr(tp, "__aiter__"):
            kind |= _ASYNC_ITERABLE
    if not kind & _AWAITABLE:
        _NOT_AWAITABLE.put(tp, True)
    return _KINDS.put(tp, kind)


def _kind(value: Any) -> int:
    kind = _KINDS.get(type(value))
    return _classify(type(value)) if kind is None else kind


def _awaited(value: Any) -> Any:
    """A call's result as a template sees it: an awaitable is awaited."""
    return await_(value) if _kind(value) & _AWAITABLE else value


def sync_iterable(value: Any) -> Any:
    """What a ``{% for %}`` loop or an iterating filter goes over (async iterables too).

    An object both async-iterable and iterable is iterated asynchronously, as
    Jinja's async mode does.
    """
    return iterate(value) if _kind(value) & _ASYNC_ITERABLE else value


class Context(jinja2.runtime.Context):
    """A template's context: what a template calls may be ``async def``."""

    @jinja2.utils.internalcode
    def call(
        __self: jinja2.runtime.Context,  # noqa: N805
        __obj: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Jinja's :meth:`~jinja2.runtime.Context.call`, awaiting what the call returns.

        Jinja's code (tests/test_compat.py says when it changes) in this
        frame: calling it from here would cost a frame with ``*args`` and
        ``**kwargs`` per call, ~4,000 instructions (benchmarks/template_steps.py).
        """
        __traceback_hide__ = True
        if type(__obj) is LoopContext and args:
            # loop(children) in a recursive loop: another loop to go over.
            args = (sync_iterable(args[0]), *args[1:])

        # Jinja's, from here to the call.
        if hasattr(__obj, "__call__") and PassArg.from_obj(__obj.__call__) is not None:  # noqa: B004
            __obj = __obj.__call__
        pass_arg = PassArg.from_obj(__obj)
        if pass_arg is PassArg.context:
            if kwargs.get("_loop_vars"):
                __self = __self.derived(kwargs["_loop_vars"])
            if kwargs.get("_block_vars"):
                __self = __self.derived(kwargs["_block_vars"])
            args = (__self, *args)
        elif pass_arg is PassArg.eval_context:
            args = (__self.eval_ctx, *args)
        elif pass_arg is PassArg.environment:
            args = (__self.environment, *args)
        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)
        try:
            value = __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )

        # As compiled filters do (CodeGenerator._AWAIT_START).
        return value if type(value) in _NOT_AWAITABLE else _awaited(value)


#: The contexts whose ``__init__`` is Jinja's (see Template.new_context).
_JINJA_CONTEXTS = (Context, jinja2.runtime.Context)

# Jinja's built-in filters and tests: they return no awaitables.
_BUILTINS = {id(f) for f in (*jinja2.filters.FILTERS.values(), *jinja2.tests.TESTS.values())}


def _foldable(node: nodes.Node, env: jinja2.Environment) -> bool:
    """Whether Jinja may compute ``node`` at compile time.

    Jinja computes constant expressions when it compiles a template, filters
    and tests included. One registered by the app may return an awaitable,
    which only the rendering can await: such expressions wait for run time.
    """
    for n in (node, *node.find_all((nodes.Filter, nodes.Test))):
        if isinstance(n, nodes.Filter):
            func = env.filters.get(n.name)
        elif isinstance(n, nodes.Test):
            func = env.tests.get(n.name)
        else:
            continue
        if id(func) not in _BUILTINS:
            return False
    return True


class _Optimizer(jinja2.optimizer.Optimizer):
    """Jinja's optimizer, leaving expressions with the app's filters and tests alone."""

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> nodes.Node:
        assert self.environment is not None
        if not _foldable(node, self.environment):
            return jinja2.visitor.NodeTransformer.generic_visit(self, node, *args, **kwargs)
        return super().generic_visit(node, *args, **kwargs)


#: What compiled templates import from this module, under these names.
_IMPORTS = {"aioflask_not_awaitable": "_NOT_AWAITABLE", "aioflask_awaited": "_awaited"}


class CodeGenerator(jinja2.compiler.CodeGenerator):
    """Jinja's sync code, awaiting what filters and tests return.

    Each ``{% for %}`` and each iterating built-in filter (``list``, ``join``,
    ``map``...) goes over :func:`sync_iterable`; the result of each filter
    and test is awaited if it is awaitable, a check written into the code
    (a call of :func:`_awaited` costs ~1,300 instructions more per filter:
    benchmarks/template_steps.py). A template with none of them is Jinja's
    code. The registered functions stay themselves (``env.filters["name"] is f``).
    """

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:  # noqa: N802
        for loop in node.find_all(nodes.For):
            loop.iter = self._call(sync_iterable, loop.iter)
        for flt in node.find_all(nodes.Filter):
            func = self.environment.filters.get(flt.name)
            if flt.node is not None and getattr(func, "jinja_async_variant", False):
                flt.node = self._call(sync_iterable, flt.node)
        if node.find((nodes.Filter, nodes.Test)) is not None:  # type: ignore[arg-type]
            names = ", ".join(f"{name} as {alias}" for alias, name in _IMPORTS.items())
            self.writeline(f"from {__name__} import {names}")
        super().visit_Template(node, frame)

    def _call(self, func: Callable[..., Any], arg: nodes.Node) -> nodes.Call:
        name = nodes.ImportedName(f"{__name__}.{func.__name__}", lineno=arg.lineno)
        call = nodes.Call(name, [arg], [], None, None, lineno=arg.lineno)
        call.set_environment(self.environment)
        return call

    def visit_Call(  # type: ignore[override]  # noqa: N802
        self, node: nodes.Call, frame: Any, **kwargs: Any
    ) -> None:
        if isinstance(node.node, nodes.ImportedName) and node.node.importname.startswith(
            f"{__name__}."
        ):
            # One of _call()'s: called directly, not through Context.call.
            self.visit(node.node, frame)
            self.write("(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, **kwargs)

    def __init__(self, environment: jinja2.Environment, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        if self.optimizer is not None:
            self.optimizer = _Optimizer(environment)

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        # Jinja's own precomputing of constant {{ expressions }}: see _Optimizer.
        if not _foldable(node, self.environment):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    # The result of a filter or test, awaited if awaitable: a type known not
    # to be awaitable is used as is, any other goes through _awaited(). The
    # assignment is evaluated before the value is read (a nested filter's
    # assignment is over by then).
    _AWAIT_START = "(aioflask_value if type(aioflask_value := "
    _AWAIT_END = ") in aioflask_not_awaitable else aioflask_awaited(aioflask_value))"

    def visit_Filter(self, node: nodes.Filter, frame: Any) -> None:  # noqa: N802
        self.write(self._AWAIT_START)
        super().visit_Filter(node, frame)
        self.write(self._AWAIT_END)

    def visit_Test(self, node: nodes.Test, frame: Any) -> None:  # noqa: N802
        self.write(self._AWAIT_START)
        super().visit_Test(node, frame)
        self.write(self._AWAIT_END)


class Template(AsyncDefaultModule, jinja2.Template):
    """A Jinja template whose sync and async APIs both work, in either mode."""

    def new_context(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,
        locals: Mapping[str, Any] | None = None,
    ) -> jinja2.runtime.Context:
        # Jinja's new_context() copies the template's globals, a ChainMap of
        # the template's and the environment's dicts, with dict(ChainMap):
        # Python code per key, twice (the context's globals_keys too), ~60,000
        # instructions with Flask's globals (benchmarks/template_steps.py).
        # The same dict and keys, merged in C (tests/test_compat.py checks
        # Jinja's code); anything else goes Jinja's way.
        env = self.environment
        globals_ = self.globals
        if (
            shared
            or locals
            or type(globals_) is not ChainMap
            or env.context_class not in _JINJA_CONTEXTS
        ):
            return super().new_context(vars, shared, locals)
        flat: dict[str, Any] = {}
        for mapping in reversed(globals_.maps):
            if type(mapping) is not dict:
                return super().new_context(vars, shared, locals)
            flat.update(mapping)
        parent = dict(flat, **vars) if vars else dict(flat)
        context: jinja2.runtime.Context = env.context_class(
            env, parent, self.name, self.blocks, globals=flat
        )
        return context

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


class Environment(flask.templating.Environment):
    """Flask's Jinja environment, with this module's template, context and code generator.

    Templates may call ``async def`` functions (globals, context values,
    methods, filters and tests) and loop over async iterables; see the
    module's description.
    """

    template_class = Template
    context_class: type[jinja2.runtime.Context] = Context
    code_generator_class: type[jinja2.compiler.CodeGenerator] = CodeGenerator
    #: What compiled templates call on each filter's and test's result.
    awaited = staticmethod(_awaited)

    def __init__(self, app: Flask, **options: Any) -> None:
        super().__init__(app, **options)
        if self.is_async:
            # Jinja's async mode awaits and iterates by itself.
            self.context_class = jinja2.runtime.Context
            self.code_generator_class = jinja2.compiler.CodeGenerator

    def call_filter(self, *args: Any, **kwargs: Any) -> Any:
        # As filters called by others (``map("name")``) see it.
        return _awaited(super().call_filter(*args, **kwargs))

    def call_test(self, *args: Any, **kwargs: Any) -> Any:
        return _awaited(super().call_test(*args, **kwargs))


@dual(_compat.render_template)
async def render_template(
    template_name_or_list: str | jinja2.Template | list[str | jinja2.Template],
    **context: Any,
) -> str:
    """Render a template by name with the given context.

    Flask's :func:`flask.render_template`: called from sync code (a sync
    view, a sync test) it returns the string, in a coroutine (an ``async
    def`` view) an awaitable of it. Context processors and the
    ``before_render_template`` / ``template_rendered`` signals run as in
    Flask, and may be ``async def``.

    .. versionadded:: 0.5
    """
    return await run_sync(_compat.render_template, template_name_or_list, **context)


@dual(_compat.render_template_string)
async def render_template_string(source: str, **context: Any) -> str:
    """Render a template from a source string; returns as :func:`render_template` does.

    .. versionadded:: 0.5
    """
    return await run_sync(_compat.render_template_string, source, **context)


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


@dual(flask.stream_template)
async def stream_template(
    template_name_or_list: str | jinja2.Template | list[str | jinja2.Template],
    **context: Any,
) -> AsyncIterator[str]:
    """Render a template by name as a stream of strings.

    Called from sync code it is Flask's :func:`flask.stream_template` (an
    iterator); in a coroutine it returns an awaitable of an async iterator.
    Return it from a view to stream the response; the request context stays
    available while it renders.

    .. versionadded:: 0.5
    """
    it = await run_sync(flask.stream_template, template_name_or_list, **context)
    return _aiterate(it)


@dual(flask.stream_template_string)
async def stream_template_string(source: str, **context: Any) -> AsyncIterator[str]:
    """Render a template from a source string as a stream; see :func:`stream_template`.

    .. versionadded:: 0.5
    """
    it = await run_sync(flask.stream_template_string, source, **context)
    return _aiterate(it)
