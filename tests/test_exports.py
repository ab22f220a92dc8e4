"""The public API: all of Flask's, plus aioflask's own names, exactly as in __all__."""

from __future__ import annotations
import __future__

import ast
import inspect
import types
from pathlib import Path

import flask
import pytest

import aioflask

#: Flask names aioflask replaces with its own (compatible) objects.
OVERRIDES = {
    "Blueprint",
    "Flask",
    "Request",
    "Response",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
    "stream_with_context",
}

#: Names that are aioflask's own (not in flask).
OWN = {
    "AwaitOutsideBridgeError",
    "BlockingDriverWarning",
    "ServerSentEvent",
    "WebSocketClosed",
    "after_this_websocket",
    "await_",
    "copy_current_websocket_context",
    "got_background_exception",
    "got_websocket_exception",
    "has_websocket_context",
    "in_thread",
    "patch",
    "run_in_thread",
    "run_on_bridge",
    "run_sync",
    "sse_response",
    "websocket",
    "websocket_finished",
    "websocket_started",
    "websocket_tearing_down",
}


def explicit_reexports(module: types.ModuleType) -> set[str]:
    """Names a package's __init__ re-exports explicitly (``from .x import y as y``)."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names if alias.asname == alias.name)
    return names


def flask_reexports() -> set[str]:
    return explicit_reexports(flask)


def flask_public_names() -> set[str]:
    """Public names of flask; a module only if flask re-exports it (``json``).

    ``annotations`` (bound by ``from __future__ import annotations``) is no API.
    """
    reexports = flask_reexports()
    return {
        name
        for name in dir(flask)
        if not name.startswith("_")
        and not isinstance(getattr(flask, name), __future__._Feature)
        and (not isinstance(getattr(flask, name), types.ModuleType) or name in reexports)
    }


def aioflask_public_names() -> set[str]:
    """Public names defined in the aioflask package namespace.

    Submodules (``aioflask.app`` ...) become attributes of the package when
    imported, and ``from __future__ import annotations`` binds ``annotations``:
    neither is API, unless re-exported explicitly (``from . import patch as patch``).
    """
    names = set()
    reexported = explicit_reexports(aioflask)
    for name in dir(aioflask):
        if name.startswith("_"):
            continue
        value = getattr(aioflask, name)
        if (
            isinstance(value, types.ModuleType)
            and value.__name__.startswith("aioflask.")
            and name not in reexported
        ):
            continue
        if isinstance(value, __future__._Feature):
            continue
        names.add(name)
    return names


def test_flask_public_names_are_what_we_expect():
    names = flask_public_names()
    assert "json" in names  # a module flask re-exports
    assert "t" not in names  # flask's "import typing as t"
    assert "annotations" not in names
    assert {"Flask", "request", "Blueprint", "jsonify", "stream_with_context"} <= names
    assert names <= flask_reexports()


@pytest.mark.parametrize("name", sorted(flask_public_names()))
def test_every_flask_name_is_importable_from_aioflask(name):
    namespace: dict[str, object] = {}
    exec(f"from aioflask import {name}", namespace)
    assert name in aioflask.__all__
    if name not in OVERRIDES:
        assert namespace[name] is getattr(flask, name)


def reexported_submodules() -> set[str]:
    """aioflask submodules that aioflask/__init__.py re-exports (``from . import x as x``)."""
    return {
        name
        for name in explicit_reexports(aioflask)
        if isinstance(getattr(aioflask, name), types.ModuleType)
        and getattr(aioflask, name).__name__.startswith("aioflask.")
    }


def test_reexported_submodules_are_in_all():
    assert reexported_submodules() <= set(aioflask.__all__)


def test_all_is_exactly_the_public_names():
    assert len(aioflask.__all__) == len(set(aioflask.__all__))
    assert set(aioflask.__all__) == aioflask_public_names()


def test_all_is_sorted():
    assert aioflask.__all__ == sorted(aioflask.__all__)


def test_star_import():
    namespace: dict[str, object] = {}
    exec("from aioflask import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(aioflask.__all__)


def test_all_is_flask_plus_own_names():
    assert set(aioflask.__all__) == flask_public_names() | OWN


def test_own_names():
    assert issubclass(aioflask.AwaitOutsideBridgeError, RuntimeError)
    assert inspect.iscoroutinefunction(aioflask.run_sync)
    assert inspect.iscoroutinefunction(aioflask.run_in_thread)
    assert callable(aioflask.await_)
    assert callable(aioflask.in_thread)
    for name in OWN:
        assert not hasattr(flask, name)
        value = getattr(aioflask, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("aioflask."), name


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_overrides_are_aioflask_objects(name):
    ours = getattr(aioflask, name)
    theirs = getattr(flask, name)
    assert ours is not theirs
    assert ours.__module__.startswith("aioflask.")


def test_flask_override_is_a_subclass():
    assert issubclass(aioflask.Flask, flask.Flask)
    app = aioflask.Flask(__name__)
    assert isinstance(app, flask.Flask)
    assert app.response_class is aioflask.Response


def test_response_override_is_a_subclass():
    assert issubclass(aioflask.Response, flask.Response)
    response = aioflask.Response("body", status=201, mimetype="text/plain")
    assert response.get_data() == b"body"
    assert response.status_code == 201


def test_blueprint_override_is_a_subclass():
    assert issubclass(aioflask.Blueprint, flask.Blueprint)


def test_request_override_is_a_subclass():
    assert issubclass(aioflask.Request, flask.Request)
    assert aioflask.Flask(__name__).request_class is aioflask.Request


def parameters(func):
    return [
        (p.name, p.kind)
        for p in inspect.signature(func).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]


@pytest.mark.parametrize(
    "name",
    [
        "render_template",
        "render_template_string",
        "stream_template",
        "stream_template_string",
        "stream_with_context",
    ],
)
def test_function_overrides_take_flasks_arguments(name):
    ours = getattr(aioflask, name)
    theirs = getattr(flask, name)
    assert parameters(ours) == parameters(theirs)
    assert ours.__doc__


def test_stream_with_context_override_accepts_sync_generators():
    app = aioflask.Flask(__name__)

    def generate():
        yield aioflask.request.path

    with app.test_request_context("/sync"):
        stream = aioflask.stream_with_context(generate())
        decorated = aioflask.stream_with_context(generate)()
    with app.test_request_context("/other"):
        assert list(stream) == ["/sync"]
        assert list(decorated) == ["/sync"]


def test_module_paths_the_docs_named_before_the_core_moved_still_import():
    import aioflask.asgi
    import aioflask.bridge
    import aioflask.core.bridge
    import aioflask.core.http

    assert aioflask.bridge is aioflask.core.bridge
    assert aioflask.asgi is aioflask.core.http
    from aioflask.asgi import ClientDisconnected, build_environ, serve_http  # noqa: F401
    from aioflask.bridge import (  # noqa: F401
        in_bridge,
        iterate,
        make_sync,
        run_in_executor,
        run_in_thread,
    )
