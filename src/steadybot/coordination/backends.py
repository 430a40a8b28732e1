"""Pick the coordination backend from the settings: Redis when configured, else in-process.

:func:`coordination_from_settings` gives one :class:`Coordination`: the keyed locks,
the single flight and the per-key serial queue a bot uses. With
``STEADYBOT_REDIS_URL`` set, locks and single flights hold across every process
sharing that Redis and ``STEADYBOT_REDIS_PREFIX`` (keys under ``{prefix}:co:``);
without it, the same API runs in this process only. The serial queue is always
in-process (it orders work by priority among *this* process's waiters); with Redis,
:attr:`Coordination.shared` tells callers to take the key's Redis lock inside their
turn as well, so work for one key still runs one at a time across processes.

The Redis client comes from :func:`steadybot.redis_pool.redis_from_settings` (a blocking
pool: a burst waits for a free connection instead of failing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.coordination.contracts import Flights, Locks
from steadybot.coordination.keyed import KeyedLock, SerialQueue, SingleFlight
from steadybot.coordination.redis_flights import RedisFlights
from steadybot.coordination.redis_lock import RedisLocks
from steadybot.redis_pool import redis_from_settings

__all__ = ["COORDINATION_NAMESPACE", "Coordination", "coordination_from_settings"]

COORDINATION_NAMESPACE: Final = "co"
"""Key part after ``redis_prefix`` for coordination keys: ``{prefix}:co:…``."""


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Coordination:
    """Locks, single flight and serial queue of one bot, on one backend."""

    locks: Locks
    flights: Flights
    queue: SerialQueue[str]
    shared: bool  # True: locks and flights hold across processes (Redis)
    backend: str  # "redis" or "local", for logs and metrics
    _close: Callable[[], Awaitable[None]] = _nothing

    async def close(self) -> None:
        """Close the Redis client (when there is one)."""
        await self._close()


def coordination_from_settings(settings: Settings, clock: Clock) -> Coordination:
    """Redis backends when ``settings.redis_url`` is set, in-process ones otherwise."""
    queue: SerialQueue[str] = SerialQueue(clock)
    if not settings.redis_url:
        return Coordination(
            locks=KeyedLock(clock),
            flights=SingleFlight(clock, join_timeout=settings.flight_join_timeout),
            queue=queue,
            shared=False,
            backend="local",
        )
    client = redis_from_settings(settings)
    locks = RedisLocks(
        client,
        clock=clock,
        namespace=f"{settings.redis_prefix}:{COORDINATION_NAMESPACE}",
        ttl=settings.lock_ttl,
        renew_interval=settings.lock_renew_interval or None,
        poll=settings.lock_wait_poll,
    )
    flights = RedisFlights(
        locks,
        clock=clock,
        result_ttl=settings.flight_result_ttl,
        join_timeout=settings.flight_join_timeout,
        poll=settings.lock_wait_poll,
    )

    async def close() -> None:
        await locks.close()
        await client.aclose()

    return Coordination(
        locks=locks, flights=flights, queue=queue, shared=True, backend="redis", _close=close
    )
