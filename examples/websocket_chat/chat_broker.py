"""Fan chat messages out to the connections of a room, in one process or many.

:class:`MemoryBroker` delivers to the subscribers of this process: enough for
one process. :class:`RedisBroker` publishes through Redis pub/sub, so that a
message sent to one worker process reaches the clients of every worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class Subscription:
    """The messages of one room, for one connection."""

    #: Messages waiting for a connection that reads too slowly, at most.
    max_backlog = 256

    def __init__(self, room: str) -> None:
        self.room = room
        self.queue: asyncio.Queue[Message] = asyncio.Queue(self.max_backlog)
        self.dropped = 0

    def deliver(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1  # a slow reader loses messages; the others do not wait

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        return await self.queue.get()


class MemoryBroker:
    """Rooms in this process's memory."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Subscription]] = collections.defaultdict(set)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, room: str, message: Message) -> None:
        self.deliver(room, message)

    def deliver(self, room: str, message: Message) -> None:
        for subscription in list(self.rooms.get(room, ())):
            subscription.deliver(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, room: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(room)
        self.rooms[room].add(subscription)
        try:
            yield subscription
        finally:
            self.rooms[room].discard(subscription)
            if not self.rooms[room]:
                del self.rooms[room]


class RedisBroker(MemoryBroker):
    """Rooms across processes: every message goes through Redis pub/sub.

    Each process holds one Redis subscription (to every room, with a pattern)
    and hands what it receives to its own subscribers, so a thousand
    connections cost one Redis connection, not a thousand.
    """

    def __init__(self, url: str, prefix: str = "chat:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._redis: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        import redis.asyncio as redis  # the "redis" extra

        self._redis = redis.from_url(self.url)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.psubscribe(f"{self.prefix}*")
        # Wait for Redis to confirm: messages published from now on reach us.
        while True:
            message = await self._pubsub.get_message(timeout=5)
            if message is None:
                raise RuntimeError(f"Redis at {self.url} did not confirm the subscription")
            if message["type"] == "psubscribe":
                break
        self._reader = asyncio.ensure_future(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait({self._reader})
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    async def publish(self, room: str, message: Message) -> None:
        await self._redis.publish(self.prefix + room, json.dumps(message))

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message["type"] == "pmessage":
                        room = message["channel"].decode()[len(self.prefix) :]
                        self.deliver(room, json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                # redis-py reconnects and subscribes again on the next read.
                logger.exception("Lost the Redis subscription; retrying in 1 s")
                await asyncio.sleep(1)


def make_broker(redis_url: str | None) -> MemoryBroker:
    return RedisBroker(redis_url) if redis_url else MemoryBroker()
