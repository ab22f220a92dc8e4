"""What every benchmark app serves, and how a response is checked.

Endpoints, the same in every stack:

- ``GET /``: a JSON ping, ``{"message": "Hello, World!"}``.
- ``GET /sleep``: waits 50 ms (``await asyncio.sleep``; ``time.sleep`` in the
  sync stacks), then the same JSON.
- ``GET /tmpl``: ``templates/table.html``, a Jinja loop over :data:`ROWS`.
- ``POST /echo``: reads the body (64 KiB in the benchmark), answers
  ``{"length": N}``.
- ``GET /block`` (sync-view stacks only): blocks 50 ms with ``time.sleep``.
- ``GET /db`` (``databases.py``): ``SELECT pg_sleep(0.05)`` on PostgreSQL, the
  same sync view everywhere, through SQLAlchemy on each stack's driver.
- ``GET /static/1mib.bin`` (aioflask only): a 1 MiB static file
  (:func:`static_dir`), sent by granian from its path (``pathsend``) unless
  ``BENCH_PATHSEND=off``.

This module imports no web framework, so every app can use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "table.html"

PING = {"message": "Hello, World!"}
SLEEP_SECONDS = 0.05
ECHO_SIZE = 64 * 1024

#: The template's data: 20 rows with a few fields of each kind.
ROWS = [
    {"id": i, "name": f"item <{i}>", "price": i * 1.25, "in_stock": i % 3 != 0} for i in range(20)
]
TITLE = "Inventory"

#: The static file's name and content (1 MiB).
STATIC_FILE = "1mib.bin"
STATIC_DATA = bytes(range(256)) * 4096


def static_dir() -> Path:
    """The directory holding :data:`STATIC_FILE` (written on first use)."""
    directory = Path(tempfile.gettempdir()) / "aioflask-bench-static"
    path = directory / STATIC_FILE
    if not path.is_file() or path.stat().st_size != len(STATIC_DATA):
        directory.mkdir(exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_bytes(STATIC_DATA)
        partial.replace(path)  # whole, even with several writers
    return directory


def check(endpoint: str, status: int, body: bytes) -> str | None:
    """What is wrong with a response to ``endpoint``, or None if it is right."""
    if status != 200:
        return f"status {status}"
    try:
        if endpoint in ("ping", "sleep", "block", "db"):
            ok = json.loads(body) == PING
        elif endpoint == "file":
            ok = body == STATIC_DATA
        elif endpoint == "echo":
            ok = json.loads(body) == {"length": ECHO_SIZE}
        elif endpoint == "tmpl":
            text = body.decode()
            ok = (
                text.count("<tr") == len(ROWS) + 1
                and "item &lt;19&gt;" in text
                and "23.75" in text
                and f"<h1>{TITLE}</h1>" in text
            )
        else:
            raise ValueError(f"unknown endpoint {endpoint!r}")
    except (ValueError, UnicodeDecodeError):
        ok = False
    return None if ok else f"unexpected body {body[:200]!r}"


_engines: dict[str, Any] = {}


def db_sleep(driver: str, pool_size: int) -> None:
    """``SELECT pg_sleep(0.05)`` on the benchmark's PostgreSQL (port ``BENCH_PG_PORT``).

    Plain SQLAlchemy with ``driver`` (``asyncpg`` through aioflask's bridge,
    ``psycopg`` blocking a thread); the pool holds ``pool_size`` connections,
    as many as requests can wait at once (a connection per request).
    """
    engine = _engines.get(driver)
    if engine is None:
        import sqlalchemy

        url = f"postgresql+{driver}://postgres@127.0.0.1:{os.environ['BENCH_PG_PORT']}/postgres"
        engine = _engines[driver] = sqlalchemy.create_engine(
            url, pool_size=pool_size, max_overflow=0
        )
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_sleep({SLEEP_SECONDS})")
