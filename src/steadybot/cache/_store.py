"""The size- and time-bounded part of a BoundedCache: cachetools' TLRU cache with hooks.

cachetools' :class:`~cachetools.TLRUCache` gives LRU order, a size bound, a per-item
expiry time (its *time-to-use* function; ours reads the time stored in the entry) and
lazy removal of expired items on every write, on a timer we supply (the injected
clock's ``monotonic``). It drops items on its own in two places: ``popitem`` when a
write would exceed the size bound, and ``expire``. This subclass reports both to the
cache, which keeps its tag index and statistics exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cachetools import TLRUCache

__all__ = ["Entry", "Store"]

V = TypeVar("V")


class Entry(Generic[V]):
    """A cached value with its tags and its expiry time (``inf``: never)."""

    __slots__ = ("expires", "tags", "value")

    def __init__(self, value: V, tags: tuple[str, ...], expires: float = math.inf) -> None:
        self.value = value
        self.tags = tags
        self.expires = expires


def _time_to_use(key: str, entry: Entry[Any], now: float) -> float:
    return entry.expires


Dropped = Callable[[str, Entry[V]], None]


class Store(TLRUCache[str, Entry[V], float]):
    """A TLRU cache that calls ``on_evict`` / ``on_expire`` for what it drops itself."""

    def __init__(
        self,
        max_size: int,
        timer: Callable[[], float],
        *,
        on_evict: Dropped[V],
        on_expire: Dropped[V],
    ) -> None:
        super().__init__(max_size, _time_to_use, timer)
        self._on_evict = on_evict
        self._on_expire = on_expire

    def popitem(self) -> tuple[str, Entry[V]]:
        # cachetools calls this while a write would exceed maxsize; it expires first.
        key, entry = super().popitem()
        self._on_evict(key, entry)
        return key, entry

    def expire(self, time: float | None = None) -> list[tuple[str, Entry[V]]]:
        expired = super().expire(time)
        for key, entry in expired:
            self._on_expire(key, entry)
        return expired
