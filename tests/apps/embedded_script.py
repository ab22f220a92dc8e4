"""A program serving ``state_app`` with ``app.serve()`` in its own loop, no trigger:
SIGINT and SIGTERM stop it."""

from __future__ import annotations

import asyncio

from state_app import app


async def main() -> None:
    ready = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(app.serve(port=0, ready=ready))
    print("serving on", await ready, flush=True)
    await server


if __name__ == "__main__":
    asyncio.run(main())
