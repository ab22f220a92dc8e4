"""aioflask.helpers: run_on_bridge() (the other helpers are tested with the views using them)."""

from __future__ import annotations

import asyncio

import pytest

from _helpers import sqlalchemy_await
from aioflask import AwaitOutsideBridgeError, await_, run_on_bridge, run_sync
from aioflask.helpers import can_wait


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def _running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


async def _fail() -> None:
    await asyncio.sleep(0)
    raise LookupError("failed on the loop")


def _waits(x: int) -> tuple[bool, int]:
    return can_wait(), await_(_double(x))


def test_run_on_bridge_from_plain_sync_code() -> None:
    assert run_on_bridge(_waits, 21) == (True, 42)
    # The private loop is kept: a second call waits on the same one.
    loops = [run_on_bridge(await_, _running_loop()) for _ in range(2)]
    assert loops[0] is loops[1]


def test_run_on_bridge_waits_for_sqlalchemy_and_runs_no_loop_in_between() -> None:
    """SQLAlchemy's await_() (its asyncio drivers) waits; the code between waits is plain sync."""
    seen: list[object] = []

    def main() -> asyncio.AbstractEventLoop:
        loop = sqlalchemy_await(_running_loop())
        # No loop runs here: asyncio.run() works, as in a Flask command.
        seen.append(asyncio.run(_double(2)))
        with pytest.raises(LookupError, match="failed on the loop"):
            sqlalchemy_await(_fail())
        seen.append(sqlalchemy_await(_running_loop()) is loop)
        return loop

    loop = run_on_bridge(main)
    assert seen == [4, True]
    assert not loop.is_running() and not loop.is_closed()


async def test_run_on_bridge_on_the_bridge_calls_directly() -> None:
    assert await run_sync(run_on_bridge, _waits, 1) == (True, 2)


async def test_run_on_bridge_in_a_coroutine_says_what_to_use() -> None:
    with pytest.raises(AwaitOutsideBridgeError, match=r"Use 'await aioflask.run_sync\(fn\)'"):
        run_on_bridge(_waits, 1)
