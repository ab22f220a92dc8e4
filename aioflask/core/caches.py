"""A dict that stops growing: the one shape of cache aioflask keeps.

Each cache of aioflask maps a key from a set that is small in practice but
not bounded by aioflask (header names a client sends, types a template sees)
to a value that is cheap to recompute. :class:`BoundedCache` keeps the lookup
a plain dict lookup and simply stops adding entries once full, so a client
that sends endless new names costs the recomputation, never memory. Every
instance carries, where it is made, the benchmark figure that justifies it.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A dict of at most ``maxsize`` entries, filled by :meth:`put`.

    Read it as a dict (``cache.get(key)``); :meth:`put` stores only while
    there is room, and returns the value either way.
    """

    __slots__ = ("maxsize",)

    def __init__(self, maxsize: int, initial: dict[K, V] | None = None) -> None:
        super().__init__(initial or {})
        #: The number of entries past which nothing is added.
        self.maxsize = maxsize

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` if there is room; return ``value``."""
        if len(self) < self.maxsize:
            self[key] = value
        return value
