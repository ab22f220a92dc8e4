"""A slow quote service, for the quotes example to call.

Each ``GET /quotes/<id>`` waits ``QUOTE_DELAY`` seconds (0.2 by default; set
``FLASK_QUOTE_DELAY``) before it answers, like a remote API would. Serve it
on port 5001::

    flask --app examples/quotes/quote_server.py aiorun --port 5001

``GET /stats`` tells how many requests it served and the most it had in
flight at once; ``DELETE /stats`` resets the counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aioflask import Flask, abort, current_app

QUOTES = [
    ("Simple is better than complex.", "The Zen of Python"),
    ("Readability counts.", "The Zen of Python"),
    ("Premature optimization is the root of all evil.", "Donald Knuth"),
    ("Talk is cheap. Show me the code.", "Linus Torvalds"),
    ("Make it work, make it right, make it fast.", "Kent Beck"),
    ("There are only two hard things in Computer Science.", "Phil Karlton"),
    ("Programs must be written for people to read.", "Harold Abelson"),
    ("Weeks of coding can save you hours of planning.", "Unknown"),
    ("The best way to predict the future is to invent it.", "Alan Kay"),
    ("Controlling complexity is the essence of computer programming.", "Brian Kernighan"),
]


def quote(quote_id: int) -> dict[str, Any]:
    """Quote number ``quote_id`` (1, 2, ...; the list repeats)."""
    text, author = QUOTES[(quote_id - 1) % len(QUOTES)]
    return {"id": quote_id, "text": text, "author": author}


class Stats:
    def __init__(self) -> None:
        self.served = self.in_flight = self.max_in_flight = 0


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(QUOTE_DELAY=0.2)
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.update(test_config)
    stats = Stats()

    @app.get("/quotes/<int:quote_id>")
    async def get_quote(quote_id: int):
        if quote_id < 1:
            abort(404)
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            # The slow part of a real service (a database, another API...).
            await asyncio.sleep(current_app.config["QUOTE_DELAY"])
        finally:
            stats.in_flight -= 1
        stats.served += 1
        return quote(quote_id)

    @app.get("/stats")
    def get_stats():
        return {"served": stats.served, "max_in_flight": stats.max_in_flight}

    @app.delete("/stats")
    def reset_stats():
        stats.served = stats.max_in_flight = 0
        return "", 204

    return app
