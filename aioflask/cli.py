"""The ``flask aiorun`` command: ``flask run``, served by uvicorn."""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

import click
import flask.cli
from flask.cli import (
    CertParamType,
    ScriptInfo,
    SeparatedPathType,
    pass_script_info,
    show_server_banner,
)
from flask.helpers import get_debug_flag

from ._compat import debug_option
from .core.bridge import make_sync
from .serving import run_server

__all__ = ["AppGroup", "aiorun_command"]


class AppGroup(flask.cli.AppGroup):
    """Flask's ``app.cli`` group; its commands may be ``async def``.

    An async command runs on a private event loop (or, under
    :meth:`~aioflask.testing.FlaskCliRunner.invoke`, on the test's loop), so
    it can ``await`` and call sync code that uses :func:`~aioflask.await_`.

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
        # Commands made with click directly (click.command() on an async def).
        if iscoroutinefunction(cmd.callback):
            cmd.callback = make_sync(cmd.callback)
        super().add_command(cmd, name)

    def group(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Group]:
        kwargs.setdefault("cls", AppGroup)
        return super().group(*args, **kwargs)


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


@click.command("aiorun", short_help="Serve the app with uvicorn (ASGI).")
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
@click.option("--log-level", default="info", help="uvicorn's log level.")
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
) -> None:
    """Serve the app with uvicorn: async views run on the event loop.

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
    ssl_context = None if cert == (None, None) else cert
    # Fail early, in this process, if the app cannot be loaded.
    app = info.load_app()
    show_server_banner(debug, info.app_import_path)
    run_server(
        app,  # type: ignore[arg-type]
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
