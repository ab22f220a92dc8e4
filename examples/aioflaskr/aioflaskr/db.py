"""The database: one aiosqlite connection per app context, on ``g``.

aiosqlite runs sqlite3 in a thread of its own and hands results back to the
event loop, so a query does not block the other requests.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import aiosqlite
import click

from aioflask import Flask, current_app, g


async def get_db() -> aiosqlite.Connection:
    """Connect to the app's database, once per app context (request or command).

    The connection is kept on ``g`` and closed by :func:`close_db` when the
    context ends.
    """
    if "db" not in g:
        g.db = await aiosqlite.connect(
            current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES
        )
        g.db.row_factory = sqlite3.Row
    return g.db  # type: ignore[no-any-return]


async def close_db(e: BaseException | None = None) -> None:
    """Close the connection, if this context opened one (an async teardown)."""
    db = g.pop("db", None)
    if db is not None:
        await db.close()


async def init_db() -> None:
    """Clear existing data and create new tables."""
    Path(current_app.config["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    db = await get_db()
    schema = (Path(__file__).parent / "schema.sql").read_text(encoding="utf-8")
    await db.executescript(schema)


async def init_db_command() -> None:
    """Clear the existing data and create new tables."""
    await init_db()
    click.echo("Initialized the database.")


# Parse TIMESTAMP columns into datetime objects (Python 3.12 deprecates the
# default converter).
sqlite3.register_converter("timestamp", lambda v: datetime.fromisoformat(v.decode()))


def init_app(app: Flask) -> None:
    """Register the database functions with the app."""
    app.teardown_appcontext(close_db)
    # app.cli.command() takes async def commands: this one runs on an event loop.
    app.cli.command("init-db")(init_db_command)
