"""A chat with rooms over WebSockets.

Serve it with ``flask --app chat aiorun`` (from this folder) and open
http://127.0.0.1:5000/ in a few browser tabs. With ``CHAT_REDIS_URL`` set
(``redis://localhost:6379/0``), messages go through Redis pub/sub, so the app
can run in several worker processes: ``flask --app chat aiorun --workers 4``.
"""

from __future__ import annotations

import asyncio
import os
import secrets

from chat_broker import MemoryBroker, Subscription, make_broker

from aioflask import Flask, WebSocketClosed, render_template, request, websocket
from aioflask.websockets import WebSocket

#: The longest message and name the chat takes.
MAX_TEXT = 2000
MAX_NAME = 32


def create_app(redis_url: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["CHAT_REDIS_URL"] = redis_url or os.environ.get("CHAT_REDIS_URL")
    broker = make_broker(app.config["CHAT_REDIS_URL"])
    app.extensions["chat_broker"] = broker
    # Connect to Redis when the server starts, disconnect when it stops.
    app.before_serving(broker.start)
    app.after_serving(broker.stop)

    @app.get("/")
    async def index():
        return await render_template("chat.html")

    @app.websocket("/ws/<room>")
    async def chat(room: str):
        name = request.args.get("name", "").strip()[:MAX_NAME] or f"guest-{secrets.token_hex(2)}"
        await websocket.accept()
        async with broker.subscribe(room) as messages:
            welcome = {"type": "welcome", "room": room, "name": name, "worker": os.getpid()}
            await websocket.send_json(welcome)
            # Messages of the room go out while this handler reads the client's.
            forward = asyncio.ensure_future(relay(messages, websocket._get_current_object()))
            try:
                await broker.publish(room, {"type": "join", "name": name})
                async for text in websocket:
                    if isinstance(text, str) and text.strip():
                        message = {"type": "message", "name": name, "text": text[:MAX_TEXT]}
                        await broker.publish(room, message)
            finally:
                # The client left (this handler was cancelled) or the app closed.
                forward.cancel()
                await asyncio.wait({forward})
                await broker.publish(room, {"type": "leave", "name": name})

    return app


async def relay(messages: Subscription, ws: WebSocket) -> None:
    try:
        async for message in messages:
            await ws.send_json(message)
    except WebSocketClosed:
        pass


def broker_of(app: Flask) -> MemoryBroker:
    return app.extensions["chat_broker"]  # type: ignore[no-any-return]


app = create_app()
