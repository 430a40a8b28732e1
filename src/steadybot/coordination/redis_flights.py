"""Single flight across processes on Redis: one run per key, joiners share its result.

A run is a Redis lock (:mod:`~steadybot.coordination.redis_lock`) on
``flight:{key}``, held (and renewed) while the work runs:

- ``reject``: the lock is tried once; held elsewhere → :class:`AlreadyRunning`.
- ``join``: whoever gets the lock runs the work; when it is done, the runner writes
  the outcome to ``result:{key}:{its lock token}`` (the result as JSON, or the error's
  text) with a TTL of ``result_ttl``, *then* releases the lock. A joiner reads the
  holder's token and polls (jittered, on the injected clock) until that outcome appears
  (→ the result, decoded as ``result_type``, or :class:`FlightFailed`), or the lock is
  gone with no outcome — **the runner died**: its lock expired after its TTL (it was no
  longer renewed) — and then the joiner tries to take over and run the work itself.
  A joiner waits at most ``timeout`` seconds (``join_timeout`` by default) in all:
  :class:`FlightTimeout`, while the run goes on.

In one process, callers of the same key first meet on an in-process
:class:`~steadybot.coordination.keyed.SingleFlight`, so only one of them talks to Redis
and the others share its result object. A later caller after the run ended runs the
work again: single flight is not a cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

import msgspec
from redis.exceptions import RedisError

from steadybot.clock import Clock
from steadybot.coordination.contracts import (
    CoordinationUnavailable,
    FlightFailed,
    FlightStatistics,
)
from steadybot.coordination.keyed import AlreadyRunning, FlightTimeout, LockTimeout, SingleFlight
from steadybot.coordination.redis_lock import RedisLease, RedisLocks

__all__ = ["FLIGHT_KEY", "RESULT_KEY", "RedisFlights"]

log = logging.getLogger("steadybot.coordination")

FLIGHT_KEY: Final = "flight"
"""Lock key part of a run: ``{namespace}:lock:flight:{key}``."""
RESULT_KEY: Final = "result"
"""Key part of a run's outcome: ``{namespace}:result:{key}:{token}``."""
_VALUE: Final = b"v"  # outcome prefix: the result as JSON follows
_ERROR: Final = b"e"  # outcome prefix: the error's text follows

T = TypeVar("T")


class _Ran(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class RedisFlights:
    """Single flight for every process of a bot (the :class:`Flights` contract)."""

    def __init__(
        self,
        locks: RedisLocks,
        *,
        clock: Clock,
        result_ttl: float = 60.0,
        join_timeout: float = 30.0,
        poll: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        if result_ttl <= 0 or join_timeout <= 0 or poll <= 0:
            raise ValueError("result_ttl, join_timeout and poll must be positive")
        self._locks = locks
        self._redis = locks.redis
        self._clock = clock
        self._result_ttl_ms = max(1, round(result_ttl * 1000))
        self._join_timeout = join_timeout
        self._poll = poll
        self._rng = rng if rng is not None else random.Random()
        self._local: SingleFlight[str] = SingleFlight(clock, join_timeout=join_timeout)
        self._runs = 0
        self._joined = 0
        self._rejected = 0

    def active_keys(self) -> int:
        return self._local.active_keys()

    def statistics(self) -> FlightStatistics:
        local = self._local.statistics()
        return FlightStatistics(
            active_keys=local.active_keys,
            runs=self._runs,
            joined=local.joined + self._joined,
            rejected=local.rejected + self._rejected,
        )

    async def reject(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        return await self._local.reject(key, lambda: self._reject_remote(key, work))

    async def join(
        self,
        key: str,
        work: Callable[[], Awaitable[T]],
        *,
        result_type: type[T],
        timeout: float | None = None,
    ) -> T:
        bound = self._join_timeout if timeout is None else timeout
        return await self._local.join(
            key, lambda: self._join_remote(key, work, result_type, bound), timeout=bound
        )

    # --- across processes ---------------------------------------------------------------

    async def _reject_remote(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        acquired = False
        try:
            async with self._locks(f"{FLIGHT_KEY}:{key}", timeout=0):
                acquired = True
                self._runs += 1
                return await work()
        except LockTimeout:
            if acquired:
                raise  # the work's own LockTimeout
            self._rejected += 1
            raise AlreadyRunning(key) from None

    async def _join_remote(
        self, key: str, work: Callable[[], Awaitable[T]], result_type: type[T], bound: float
    ) -> T:
        deadline = self._clock.monotonic() + bound
        counted = False
        while True:
            ran = await self._run_if_free(key, work)
            if ran is not None:
                return ran.value
            if not counted:
                counted = True
                self._joined += 1
            outcome = await self._await_outcome(key, deadline, bound)
            if outcome is not None:
                return _decode(key, outcome, result_type)
            log.warning("single flight %r: the runner vanished without a result; taking over", key)

    async def _run_if_free(self, key: str, work: Callable[[], Awaitable[T]]) -> _Ran[T] | None:
        acquired = False
        try:
            async with self._locks(f"{FLIGHT_KEY}:{key}", timeout=0) as lease:
                acquired = True
                self._runs += 1
                try:
                    value = await work()
                except Exception as exc:
                    await self._publish(
                        key, lease, _ERROR + f"{type(exc).__name__}: {exc}".encode()
                    )
                    raise
                try:
                    encoded = _VALUE + msgspec.json.encode(value)
                except (TypeError, msgspec.EncodeError) as exc:
                    log.warning("single flight %r: the result is not JSON (%s)", key, exc)
                    encoded = _ERROR + b"the result could not be shared (not JSON-serializable)"
                await self._publish(key, lease, encoded)
                return _Ran(value)
        except LockTimeout:
            if acquired:
                raise
            return None

    async def _publish(self, key: str, lease: RedisLease, outcome: bytes) -> None:
        """Before the lock is released, so a joiner that sees it free finds the outcome."""
        try:
            await self._redis.set(
                self._result_key(key, lease.token.encode()), outcome, px=self._result_ttl_ms
            )
        except RedisError as exc:
            # Joiners will find the lock free and no outcome: one of them runs it again.
            log.warning("single flight %r: could not share the outcome (%s)", key, exc)

    async def _await_outcome(self, key: str, deadline: float, bound: float) -> bytes | None:
        """The holder's outcome, or None when the lock is free without one (take over)."""
        lock_key = self._locks.redis_key(f"{FLIGHT_KEY}:{key}")
        holder: bytes | None = None
        while True:
            try:
                if holder is None:
                    current, outcome = await self._redis.get(lock_key), None
                else:
                    # One atomic read: an outcome is written before its lock is released.
                    current, outcome = await self._redis.mget(
                        lock_key, self._result_key(key, holder)
                    )
            except RedisError as exc:
                raise CoordinationUnavailable(f"Redis flight unavailable: {exc}") from exc
            if outcome is not None:
                return _as_bytes(outcome)
            if current is None:
                return None
            holder = _as_bytes(current)
            now = self._clock.monotonic()
            if now >= deadline:
                raise FlightTimeout(f"{key!r} still running after {bound:.2f}s")
            await self._clock.sleep(
                min(self._rng.uniform(self._poll / 2, self._poll), deadline - now)
            )

    def _result_key(self, key: str, token: bytes) -> str:
        return f"{self._locks.namespace}:{RESULT_KEY}:{key}:{token.decode()}"


def _decode(key: str, outcome: bytes, result_type: type[T]) -> T:
    if outcome.startswith(_VALUE):
        return msgspec.json.decode(outcome[len(_VALUE) :], type=result_type)
    raise FlightFailed(key, outcome[len(_ERROR) :].decode(errors="replace"))


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
