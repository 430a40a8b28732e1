"""What a keyed lock and a single flight promise, in one process or across many.

Two implementations stand behind each contract: in-process
(:class:`~steadybot.coordination.keyed.KeyedLock`,
:class:`~steadybot.coordination.keyed.SingleFlight`) and on Redis
(:class:`~steadybot.coordination.redis_lock.RedisLocks`,
:class:`~steadybot.coordination.redis_flights.RedisFlights`). Code that takes a
:class:`Locks` or a :class:`Flights` runs the same on both; ``bot.locks`` and
``bot.flights`` pick one from the settings (Redis when ``STEADYBOT_REDIS_URL`` is set).

A :class:`Lease` is what holding a lock gives you:

- ``fence``: a number that grows with every acquisition (of any key, in every process
  sharing the backend). Pass it to the store and let the store refuse a write whose
  fence is older than the last one it accepted: a holder whose lock expired while it
  was paused cannot overwrite the work of the next holder (docs/coordination.md).
- ``lost``: True once the backend found the lock gone while it was still held (a Redis
  lock whose TTL ran out before a renewal). In-process locks are never lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from steadybot.errors import SteadybotError
from steadybot.resilience.taxonomy import TransientError

__all__ = [
    "CoordinationUnavailable",
    "FlightFailed",
    "FlightStatistics",
    "Flights",
    "Lease",
    "LockLost",
    "LockStatistics",
    "Locks",
]

T = TypeVar("T")


class LockLost(SteadybotError):
    """The lock expired (or was taken over) while its holder was still working."""


class FlightFailed(SteadybotError):
    """The run a joiner waited for (in another process) failed; carries its error text."""

    def __init__(self, key: str, error: str) -> None:
        self.key = key
        self.error = error
        super().__init__(f"the run of {key!r} failed: {error}")


class CoordinationUnavailable(TransientError):
    """The coordination backend (Redis) did not answer; trying again later may work."""


@dataclass(frozen=True, slots=True)
class LockStatistics:
    """A keyed lock's counters since start, and what it holds now."""

    active_keys: int  # keys held or awaited in this process now
    acquired: int  # acquisitions that succeeded
    waited: int  # acquisitions that found the key held and waited
    timeouts: int  # acquisitions given up (LockTimeout), tries with timeout=0 included
    lost: int  # leases found lost while held (Redis: TTL ran out)


@dataclass(frozen=True, slots=True)
class FlightStatistics:
    """A single flight's counters since start."""

    active_keys: int  # keys running (or joined) in this process now
    runs: int  # works started here
    joined: int  # callers that shared another run's result
    rejected: int  # callers told AlreadyRunning


class Lease(Protocol):
    """Holding one key's lock."""

    @property
    def key(self) -> str: ...

    @property
    def fence(self) -> int:
        """Strictly greater than the fence of every earlier acquisition."""
        ...

    @property
    def lost(self) -> bool:
        """True once the lock is known to be gone while still held."""
        ...

    def check(self) -> None:
        """Raise :class:`LockLost` when :attr:`lost`; call before a write that needs it."""
        ...


class Locks(Protocol):
    """One lock per key: ``async with locks("user:1", timeout=2.0) as lease: ...``.

    ``timeout=None`` waits as long as it takes; ``timeout=0`` tries once; otherwise
    :class:`~steadybot.coordination.keyed.LockTimeout` after ``timeout`` seconds on the
    injected clock.
    """

    def __call__(
        self, key: str, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Lease]: ...

    def active_keys(self) -> int: ...

    def statistics(self) -> LockStatistics: ...


class Flights(Protocol):
    """At most one run of the same work per key at a time."""

    async def join(
        self,
        key: str,
        work: Callable[[], Awaitable[T]],
        *,
        result_type: type[T],
        timeout: float | None = None,
    ) -> T:
        """Run ``work``, or wait (at most ``timeout`` s) for the run under way and share
        its result. Across processes the result travels as JSON (msgspec), decoded as
        ``result_type``."""
        ...

    async def reject(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, or raise
        :class:`~steadybot.coordination.keyed.AlreadyRunning` when a run is under way."""
        ...

    def active_keys(self) -> int: ...

    def statistics(self) -> FlightStatistics: ...
