"""aioflask.helpers: run_on_bridge() (the other helpers are tested with the views using them)."""

from __future__ import annotations

import asyncio

import pytest

from aioflask import AwaitOutsideBridgeError, await_, run_on_bridge, run_sync
from aioflask.bridge import in_bridge


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def _on_bridge(x: int) -> tuple[bool, int]:
    return in_bridge(), await_(_double(x))


def test_run_on_bridge_from_plain_sync_code() -> None:
    assert run_on_bridge(_on_bridge, 21) == (True, 42)
    # The private loop is kept: a second call runs on the same one.
    loops = [run_on_bridge(asyncio.get_running_loop) for _ in range(2)]
    assert loops[0] is loops[1]


async def test_run_on_bridge_on_the_bridge_calls_directly() -> None:
    assert await run_sync(run_on_bridge, _on_bridge, 1) == (True, 2)


async def test_run_on_bridge_in_a_coroutine_says_what_to_use() -> None:
    with pytest.raises(AwaitOutsideBridgeError, match="Use 'await' here"):
        run_on_bridge(_on_bridge, 1)
