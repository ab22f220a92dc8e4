"""The ``flask aiorun`` command: ``flask run``, served by uvicorn or granian."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

import click
import flask.cli
from flask.cli import CertParamType, ScriptInfo, pass_script_info, show_server_banner
from flask.helpers import get_debug_flag

from ._compat import debug_option
from .bridge import make_sync
from .serving import SERVERS, run_server

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
    if value is not None and cert is None:
        raise click.BadParameter('"--cert" must also be specified.', ctx, param)
    if cert is not None and value is None and cert != "adhoc":
        raise click.BadParameter('"--key" is required when "--cert" is a file.', ctx, param)
    if cert == "adhoc" and value is not None:
        raise click.BadParameter('"--key" is not used with "--cert adhoc".', ctx, param)
    if not isinstance(cert, (str, type(None))):
        raise click.BadParameter("--cert takes a certificate file or 'adhoc'.", ctx, param)
    ctx.params["cert"] = (cert, value)
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
    cert: tuple[str | None, str | None] | None,
    reload: bool | None,
    debugger: bool | None,
    workers: int,
    log_level: str,
    server: str,
) -> None:
    """Serve the app with uvicorn (or granian): async views run on the event loop.

    Takes the options of 'flask run'. The reloader and the debugger are on by
    default with the '--debug' option; the reloader and '--workers' load the
    app again in new processes.
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
    certfile, keyfile = cert if cert else (None, None)
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
        certfile=certfile,
        keyfile=keyfile,
        app_import_path=info.app_import_path,
        log_level=log_level,
    )


# Like `flask run`, `flask aiorun --debug` (and `flask --debug aiorun`).
aiorun_command.params.insert(0, debug_option)
