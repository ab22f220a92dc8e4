"""One API for sync and async callers, decided by where it is called.

A :func:`dual` function returns its result to sync code that may wait (a sync
view, hook or command on the bridge; a sync test or script, where no loop
runs) and an awaitable to a coroutine; :class:`DualContext` does the same for
``with`` and ``async with``. :func:`~aioflask.core.bridge.called_from_sync`
tells which face the caller gets. The test client, the CLI runner and
``render_template*`` are built this way. No frame is inspected: the answer
depends on the greenlet and the running loop, the same on every Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, Generic, TypeVar

from .bridge import AwaitOutsideBridgeError, await_, called_from_sync, run_sync

__all__ = ["Awaiting", "DualContext", "dual"]

T = TypeVar("T")


class Awaiting(Coroutine[Any, Any, T]):
    """What a :func:`dual` function returns to a coroutine: ``await`` it.

    It is a coroutine (``asyncio.create_task()`` takes it too); using it as
    the result itself raises an error that says to ``await`` it.
    """

    __slots__ = ("_call", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, T], call: str) -> None:
        self._coro = coro
        self._call = call

    def __await__(self) -> Generator[Any, Any, T]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def _misused(self) -> TypeError:
        self._coro.close()  # never awaited: no "never awaited" warning later
        return TypeError(
            f"{self._call} was called in a coroutine, so it returned an awaitable:"
            f" write 'await {self._call}'. (Called from sync code, it returns the"
            " result.)"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("_", "cr_", "gi_")):
            # What asyncio's reprs and introspection look for on coroutines.
            return getattr(self._coro, name)
        raise self._misused()

    def misused(self) -> TypeError:
        """The error to raise where this is used as the result."""
        return self._misused()

    def __iter__(self) -> Iterator[Any]:
        raise self._misused()


def dual(
    sync: Callable[..., Any] | None = None, call: str | None = None
) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], Callable[..., Any]]:
    """Make a coroutine function answer sync callers with its result.

    The decorated function returns its result when :func:`called_from_sync`
    (by calling ``sync``, or by waiting for the coroutine function with
    :func:`await_`), and an :class:`Awaiting` of it otherwise::

        @dual(flask.render_template)
        async def render_template(name, **context): ...

    :param call: how a call reads in the error about a missing ``await``
        (default: ``"name(...)"``).

    .. versionadded:: 0.5
    """

    def decorator(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        shown = call or f"{func.__name__}(...)"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not called_from_sync():
                return Awaiting(func(*args, **kwargs), shown)
            if sync is not None:
                return sync(*args, **kwargs)
            return await_(func(*args, **kwargs))

        return wrapper

    return decorator


class DualContext(Generic[T]):
    """A context manager for both ``with`` (sync code) and ``async with`` (coroutines).

    Built from a sync context manager, ``async with`` runs it on the bridge
    (:func:`run_sync`); built from an async one, ``with`` waits for it with
    :func:`await_`. In a coroutine on the loop, ``with`` a context that must
    wait raises an error that says to write ``async with``.

    .. versionadded:: 0.5
    """

    __slots__ = ("_cm", "_is_async", "_name")

    def __init__(self, cm: Any, name: str) -> None:
        self._cm = cm
        self._is_async = hasattr(cm, "__aenter__")
        self._name = name

    def _wrong_with(self) -> AwaitOutsideBridgeError:
        return AwaitOutsideBridgeError(
            f"'with {self._name}' cannot wait in a coroutine running on the event"
            f" loop: write 'async with {self._name}' here."
        )

    def __enter__(self) -> T:
        if not self._is_async:
            try:
                return self._cm.__enter__()  # type: ignore[no-any-return]
            except AwaitOutsideBridgeError as exc:
                raise self._wrong_with() from exc
        if not called_from_sync():
            raise self._wrong_with()
        return await_(self._cm.__aenter__())  # type: ignore[no-any-return]

    def __exit__(self, *exc_info: Any) -> bool | None:
        if not self._is_async:
            try:
                return self._cm.__exit__(*exc_info)  # type: ignore[no-any-return]
            except AwaitOutsideBridgeError as exc:
                raise self._wrong_with() from exc
        return await_(self._cm.__aexit__(*exc_info))  # type: ignore[no-any-return]

    async def __aenter__(self) -> T:
        if self._is_async:
            return await self._cm.__aenter__()  # type: ignore[no-any-return]
        return await run_sync(self._cm.__enter__)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if self._is_async:
            return await self._cm.__aexit__(*exc_info)  # type: ignore[no-any-return]
        return await run_sync(self._cm.__exit__, *exc_info)
