"""An app factory for the ``flask aiorun`` tests (with arguments)."""

from __future__ import annotations

import asyncio
import os

import click

from aioflask import Blueprint, Flask, current_app, g, request, websocket

bp = Blueprint("tools", __name__, cli_group="tools")


@bp.cli.command("count")
async def count() -> None:
    await asyncio.sleep(0)
    print("tools", current_app.name)


def create_app(greeting: str = "hello") -> Flask:
    app = Flask("cliapp")
    app.register_blueprint(bp)

    @app.get("/")
    async def index() -> dict[str, object]:
        await asyncio.sleep(0)
        return {
            "greeting": greeting,
            "pid": os.getpid(),
            "debug": current_app.debug,
            "scheme": request.scheme,
            "from_env": os.environ.get("CLIAPP_SETTING"),
        }

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom for the debugger")

    @app.websocket("/ws/<room>")
    async def room(room: str) -> None:
        await websocket.accept()

    @app.cli.command("hello")
    async def hello() -> None:
        await asyncio.sleep(0)
        print(greeting, current_app.name)

    @app.cli.command("own-loop")
    def own_loop() -> None:
        """A sync command running a coroutine itself, as Flask apps do."""

        async def greet() -> str:
            await asyncio.sleep(0)
            return f"{greeting} from asyncio.run"

        print(asyncio.run(greet()), current_app.name)

    def load_user(ctx: click.Context, param: click.Parameter, value: str) -> str:
        g.user = value.title()
        return value

    @app.cli.command("greet")
    @click.option("--user", callback=load_user, default="ada")
    def greet(user: str) -> None:
        """A parameter callback puts the user on g (it has the app context)."""
        print(f"hello {g.user}")

    @app.cli.command("plain", with_appcontext=False)
    async def plain() -> None:
        print("no app context needed")

    return app
