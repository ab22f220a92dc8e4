"""SQLAlchemy on the bridge: a warning when a sync driver blocks the event loop.

Nothing here is needed for an asyncio driver to work (the bridge's greenlets
are SQLAlchemy greenlet providers, see :mod:`aioflask.bridge`). What this adds
is the one mistake that works but does not scale: a sync driver
(``sqlite3``, ``psycopg2``, ``pymysql``) queried from a view on the event loop,
where each query stops every other request of the worker.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import flask

from .core.bridge import in_bridge

__all__ = ["BlockingDriverWarning", "watch_sqlalchemy"]

#: The asyncio driver to use instead, per SQLAlchemy dialect name.
ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg://",
    "sqlite": "sqlite+aiosqlite://",
    "mysql": "mysql+aiomysql://",
    "mariadb": "mariadb+aiomysql://",
    "mssql": "mssql+aioodbc://",
    "oracle": "oracle+oracledb_async://",
}

_watching = False


class BlockingDriverWarning(RuntimeWarning):
    """A sync database driver was used in a request, on the event loop.

    Each of its queries blocks the loop: every other request of the worker
    waits meanwhile. Use the dialect's asyncio driver in the database URL
    (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``,
    ``mysql+aiomysql://``): the code stays the same and queries suspend only
    their own request. Or run the view in a thread (:func:`~aioflask.in_thread`).
    A deliberate choice (an in-memory SQLite, say) can silence it::

        warnings.filterwarnings("ignore", category=aioflask.BlockingDriverWarning)

    .. versionadded:: 0.5
    """


def watch_sqlalchemy() -> None:
    """Warn about sync drivers used in requests, if SQLAlchemy is imported.

    Called when an app is created and when a server starts it (ASGI
    lifespan), so that SQLAlchemy imported after the app was made is seen
    too; listens to every SQLAlchemy engine's ``engine_connect`` event (one
    check per connection checkout).
    """
    global _watching
    if _watching or "sqlalchemy" not in sys.modules:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "engine_connect", _check_driver)
    _watching = True


def _check_driver(connection: Any) -> None:
    dialect = connection.dialect
    if dialect.is_async or not in_bridge() or not flask.has_request_context():
        return
    instead = ASYNC_DRIVERS.get(dialect.name, "the dialect's asyncio driver")
    warnings.warn(
        f"The sync database driver {dialect.name}+{dialect.driver} is used in a request,"
        " on the event loop: each query blocks every other request of this worker."
        f" Use an asyncio driver in the database URL ({instead}), or run the view"
        " in a thread (@aioflask.in_thread).",
        BlockingDriverWarning,
        stacklevel=2,
    )
