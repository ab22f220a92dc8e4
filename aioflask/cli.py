"""The ``flask aiorun`` command: ``flask run``, served by uvicorn or granian."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import ssl
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

import click
import flask
import flask.cli
from flask.cli import (
    CertParamType,
    ScriptInfo,
    SeparatedPathType,
    pass_script_info,
    show_server_banner,
    with_appcontext,
)
from flask.helpers import get_debug_flag

from ._compat import debug_option
from .core.bridge import make_sync
from .helpers import can_wait, run_on_bridge
from .serving import SERVERS, run_server

__all__ = ["AppGroup", "aiorun_command", "routes_command"]


class AppGroup(flask.cli.AppGroup):
    """Flask's ``app.cli`` group; its commands may be ``async def``.

    Every command in it (and every command of a group in it, such
    as Flask-Migrate's ``db``) runs through :func:`~aioflask.run_on_bridge`
    (or, under :meth:`~aioflask.testing.FlaskCliRunner.invoke`, on the test's
    loop): an async command can ``await``, and sync code can wait through
    :func:`~aioflask.await_` or an asyncio driver of SQLAlchemy, as in a view
    (``db.create_all()`` with ``postgresql+asyncpg://``), and still call
    ``asyncio.run()`` as in Flask.

    .. versionadded:: 0.5
    """

    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        decorator = super().command(*args, **kwargs)

        @functools.wraps(decorator)
        def wrapper(f: Callable[..., Any]) -> click.Command:
            return decorator(make_sync(f) if iscoroutinefunction(f) else f)

        return wrapper

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _adopt(cmd)
        super().add_command(cmd, name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Also the commands put in `commands` directly: Flask merges those of
        # a blueprint with cli_group=None that way (extensions' blueprints
        # are flask.Blueprint, whose cli is Flask's group).
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _adopt(cmd)
        return cmd

    def group(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Group]:
        kwargs.setdefault("cls", AppGroup)
        return super().group(*args, **kwargs)


#: Marks a command's ``invoke`` that runs on the bridge (extensions share
#: their command objects between apps: wrap once).
_ON_BRIDGE = "__aioflask_on_bridge__"


def _adopt(cmd: click.Command) -> None:
    """Make ``cmd`` an aioflask command: an async callback awaited, run on the bridge."""
    # Commands made with click directly (click.command() on an async def).
    if iscoroutinefunction(cmd.callback):
        cmd.callback = make_sync(cmd.callback)
    if not getattr(cmd.invoke, _ON_BRIDGE, False):
        cmd.invoke = _invoke_on_bridge(cmd.invoke)  # type: ignore[method-assign,assignment]


def _invoke_on_bridge(invoke: Callable[[click.Context], Any]) -> Callable[[click.Context], Any]:
    """Wrap a command's ``invoke`` so that the command runs on the bridge."""

    @functools.wraps(invoke)
    def wrapper(ctx: click.Context) -> Any:
        if can_wait() or _loop_running():
            # On the bridge already (the test runner, a command of a group),
            # or a sync runner called in a coroutine (Flask's CliRunner in an
            # async test): run it here, as Flask does.
            return invoke(ctx)
        return run_on_bridge(_in_own_app_context, invoke, ctx)

    setattr(wrapper, _ON_BRIDGE, True)
    return wrapper


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _in_own_app_context(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    # `flask` pushed the app context before the command, off the bridge, and
    # pops it after: push one of the command's own here, so that its teardown
    # (Flask-SQLAlchemy closes its session there) also runs on the bridge.
    # It shares `g` with the outer one, where parameter callbacks may have
    # put things; the outer teardown then finds nothing left to close.
    if not flask.has_app_context():
        return invoke(ctx)
    app_ctx = flask.current_app.app_context()
    app_ctx.g = flask.g._get_current_object()
    with app_ctx:
        return invoke(ctx)


def _validate_key(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    cert = ctx.params.get("cert")
    is_context = isinstance(cert, ssl.SSLContext)
    if value is not None and cert is None:
        raise click.BadParameter('"--cert" must also be specified.', ctx, param)
    if is_context and value is not None:
        raise click.BadParameter('"--key" is not used when "--cert" is an SSLContext.', ctx, param)
    if cert is not None and value is None and cert != "adhoc" and not is_context:
        raise click.BadParameter('"--key" is required when "--cert" is a file.', ctx, param)
    if cert == "adhoc" and value is not None:
        raise click.BadParameter('"--key" is not used with "--cert adhoc".', ctx, param)
    # What app.run() takes as ssl_context.
    ctx.params["cert"] = cert if cert == "adhoc" or is_context else (cert, value)
    return value


@click.command("aiorun", short_help="Serve the app with uvicorn or granian (ASGI).")
@click.option("--host", "-h", default="127.0.0.1", help="The interface to bind to.")
@click.option("--port", "-p", default=5000, help="The port to bind to.")
@click.option(
    "--cert",
    type=CertParamType(),
    is_eager=True,
    help="A certificate file for HTTPS, or 'adhoc' for a throwaway one.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, resolve_path=True),
    callback=_validate_key,
    expose_value=False,
    help="The key file of the certificate.",
)
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart on code changes. On by default with --debug.",
)
@click.option(
    "--debugger/--no-debugger",
    default=None,
    help="Serve Werkzeug's interactive debugger. On by default with --debug.",
)
@click.option(
    "--workers",
    "-w",
    default=1,
    type=click.IntRange(min=1),
    help="Number of worker processes.",
)
@click.option(
    "--extra-files",
    default=None,
    type=SeparatedPathType(),
    help=(
        "Extra files that trigger a reload on change. Multiple paths"
        f" are separated by {os.path.pathsep!r}."
    ),
)
@click.option(
    "--exclude-patterns",
    default=None,
    type=SeparatedPathType(),
    help=(
        "Files matching these fnmatch patterns will not trigger a reload"
        " on change. Multiple patterns are separated by"
        f" {os.path.pathsep!r}."
    ),
)
@click.option("--log-level", default="info", help="The server's log level.")
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default="uvicorn",
    help="The ASGI server: uvicorn, or granian (pip install 'aioflask[granian]').",
)
@pass_script_info
def aiorun_command(
    info: ScriptInfo,
    host: str,
    port: int,
    cert: Any,
    reload: bool | None,
    debugger: bool | None,
    workers: int,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    log_level: str,
    server: str,
) -> None:
    """Serve the app with uvicorn (or granian): async views run on the event loop.

    Takes the options of 'flask run'. The reloader and the debugger are on by
    default with the '--debug' option; the reloader restarts the process on
    a change, and '--workers' load the app again in new processes.
    """
    debug = get_debug_flag()
    if reload is None:
        reload = debug and workers == 1
    if debugger is None:
        debugger = debug
    if reload and workers > 1:
        raise click.UsageError("--reload and --workers cannot be used together.")
    if debugger and workers > 1:
        raise click.UsageError("The debugger keeps state in one process: use --workers 1.")
    if server == "granian" and importlib.util.find_spec("granian") is None:
        raise click.UsageError(
            "--server granian needs the granian package: pip install 'aioflask[granian]'."
        )
    ssl_context = None if cert == (None, None) else cert
    # Fail early, in this process, if the app cannot be loaded.
    app = info.load_app()
    show_server_banner(debug, info.app_import_path)
    run_server(
        app,  # type: ignore[arg-type]
        server=server,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        debugger=debugger,
        ssl_context=ssl_context,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        app_import_path=info.app_import_path,
        log_level=log_level,
    )


# Like `flask run`, `flask aiorun --debug` (and `flask --debug aiorun`).
aiorun_command.params.insert(0, debug_option)


def _routes(sort: str, all_methods: bool) -> None:
    """Show all registered routes with endpoints and methods (WebSocket routes as WEBSOCKET)."""
    # Flask's routes command, whose Methods column says WEBSOCKET for the
    # rules of @app.websocket: their handshake is a GET, but they answer no
    # HTTP request. Anything else prints exactly as with Flask.
    rules = list(flask.current_app.url_map.iter_rules())
    if not rules:
        click.echo("No routes were registered.")
        return
    ignored_methods = set() if all_methods else {"HEAD", "OPTIONS"}
    host_matching = flask.current_app.url_map.host_matching
    has_domain = any(rule.host if host_matching else rule.subdomain for rule in rules)
    headers = ["Endpoint", "Methods", *(["Host" if host_matching else "Subdomain"] * has_domain)]
    headers.append("Rule")
    sorts = ["endpoint", "methods", *(["domain"] * has_domain), "rule"]
    rows = []
    for rule in rules:
        methods = (rule.methods or set()) - ignored_methods
        row = [rule.endpoint, "WEBSOCKET" if rule.websocket else ", ".join(sorted(methods))]
        if has_domain:
            row.append((rule.host if host_matching else rule.subdomain) or "")
        rows.append([*row, rule.rule])
    if sort in sorts:  # "match" keeps the URL map's order
        rows.sort(key=lambda row: row[sorts.index(sort)])
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    template = "  ".join(f"{{{i}:<{w}}}" for i, w in enumerate(widths))
    for row in [headers, ["-" * w for w in widths], *rows]:
        click.echo(template.format(*row))


#: ``flask routes`` (registered under Flask's name through the
#: ``flask.commands`` entry point, so it replaces Flask's): Flask's options
#: and output, with WebSocket routes shown as such.
routes_command = click.Command(
    "routes",
    callback=with_appcontext(_routes),
    params=flask.cli.routes_command.params,
    help=_routes.__doc__,
    short_help=flask.cli.routes_command.short_help,
)
