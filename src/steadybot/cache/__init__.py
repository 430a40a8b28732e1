"""Bounded caches: TTL + LRU + pinning, tags, single-flight loads, cross-process invalidation."""

from steadybot.cache.bounded import BoundedCache
from steadybot.cache.bus import (
    Invalidation,
    InvalidationBus,
    InvalidationKind,
    InvalidationListener,
    LocalInvalidationBus,
)
from steadybot.cache.redis_bus import RedisInvalidationBus
from steadybot.cache.statistics import CacheMiss, CacheStatistics

__all__ = [
    "BoundedCache",
    "CacheMiss",
    "CacheStatistics",
    "Invalidation",
    "InvalidationBus",
    "InvalidationKind",
    "InvalidationListener",
    "LocalInvalidationBus",
    "RedisInvalidationBus",
]
