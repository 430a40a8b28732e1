"""The records a cache reports: its statistics, and the error of a pin that found nothing."""

from __future__ import annotations

from dataclasses import dataclass

from steadybot.errors import SteadybotError

__all__ = ["CacheMiss", "CacheStatistics"]


class CacheMiss(SteadybotError, KeyError):
    """``pinned(key)`` without a loader found nothing to pin."""

    def __init__(self, cache: str, key: str) -> None:
        self.cache = cache
        self.key = key
        super().__init__(f"{key!r} is not in cache {cache!r} and no loader was given")

    def __str__(self) -> str:  # KeyError would print only the repr of the argument
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of one cache. Counters count since creation."""

    name: str
    hits: int
    misses: int
    loads: int
    """Loader runs started by ``get_or_load`` / ``pinned`` (joiners do not add one)."""
    load_failures: int
    """Loader runs that raised (or were cancelled); nothing was cached for them."""
    evictions: int
    """Entries dropped to respect ``max_size``."""
    expirations: int
    """Entries dropped because their TTL passed."""
    invalidations: int
    """Entries dropped by an invalidation, local or received from the bus."""
    remote_invalidations: int
    """Invalidation messages received from the bus and applied."""
    size: int
    """Live entries, pinned ones included."""
    pinned: int
    """Keys pinned right now (these may push ``size`` past ``max_size``)."""
    loading: int
    """Keys whose load is running right now."""
    tags: int
    """Tags in the tag index."""
    max_size: int
