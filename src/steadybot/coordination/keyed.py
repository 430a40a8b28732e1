"""Per-key coordination in one process: locks, serial queues, single flight.

Why our own: asyncio gives one lock, not one per key that disappears when unused, and
per-user maps that grow forever are one of the production stories behind steadybot.
Every structure here keeps an entry only while someone holds, waits for, or runs under
its key; :meth:`active_keys` says how many exist right now (a test can assert it
returns to zero).

- :class:`KeyedLock`: ``async with locks("user:1") as lease:`` — FIFO per key,
  optional ``timeout`` on the injected clock (then :class:`LockTimeout`; ``0`` tries
  once), :meth:`holds` for "is someone already working on this key?", and a fencing
  number on the lease (a counter of acquisitions: see
  :mod:`steadybot.coordination.contracts`).
- :class:`SerialQueue`: work for one key runs one at a time, *interactive* work before
  *background* work queued for the same key (a user's click is not stuck behind a
  nightly recalculation of their data); background work may be deferred by the
  caller. A ``timeout`` bounds the wait for a turn.
- :class:`SingleFlight`: the second identical request joins the first one's result
  (``join``) or is told it is already running (``reject``:
  :class:`AlreadyRunning`), so a double click does the work once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, KeysView
from typing import Any, Generic, TypeVar

from steadybot.clock import Clock, within
from steadybot.coordination.contracts import FlightStatistics, LockStatistics
from steadybot.errors import SteadybotError

__all__ = [
    "AlreadyRunning",
    "FlightTimeout",
    "KeyLease",
    "KeyedLock",
    "LockTimeout",
    "Priority",
    "PriorityGate",
    "SerialQueue",
    "SingleFlight",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class LockTimeout(SteadybotError):
    """The key's lock was not free within the time allowed."""


class FlightTimeout(LockTimeout):
    """A single-flight joiner waited longer than its timeout for the run's result."""


class AlreadyRunning(SteadybotError):
    """The same work is already running for this key (single flight, ``reject`` mode)."""

    def __init__(self, key: object) -> None:
        self.key = key
        super().__init__(f"already processing {key!r}")


class KeyLease(Generic[K]):
    """Holding one key of a :class:`KeyedLock`; never lost (the process owns it)."""

    __slots__ = ("fence", "key")

    def __init__(self, key: K, fence: int) -> None:
        self.key = key
        self.fence = fence

    @property
    def lost(self) -> bool:
        return False

    def check(self) -> None:
        return None


class _Entry:
    __slots__ = ("lock", "owner", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[Any] | None = None
        self.users = 0


class KeyedLock(Generic[K]):
    """One FIFO lock per key; a key's entry exists only while it is held or awaited."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[K, _Entry] = {}
        self._fences = itertools.count(1)
        self._acquired = 0
        self._waited = 0
        self._timeouts = 0

    def active_keys(self) -> int:
        return len(self._entries)

    def statistics(self) -> LockStatistics:
        return LockStatistics(
            active_keys=len(self._entries),
            acquired=self._acquired,
            waited=self._waited,
            timeouts=self._timeouts,
            lost=0,
        )

    def holds(self, key: K) -> bool:
        """Whether someone holds (or waits for) ``key`` right now."""
        return key in self._entries

    def keys(self) -> KeysView[K]:
        """The keys held or awaited right now."""
        return self._entries.keys()

    def held_here(self, key: K) -> bool:
        """Whether the current task holds ``key`` (asyncio locks are not re-entrant: a
        second ``async with`` on it from this task would wait for ever)."""
        entry = self._entries.get(key)
        return entry is not None and entry.owner is asyncio.current_task()

    @contextlib.asynccontextmanager
    async def __call__(self, key: K, *, timeout: float | None = None) -> AsyncIterator[KeyLease[K]]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            await self._acquire(entry, timeout, key)
            entry.owner = asyncio.current_task()
            self._acquired += 1
            try:
                yield KeyLease(key, next(self._fences))
            finally:
                entry.owner = None
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    async def _acquire(self, entry: _Entry, timeout: float | None, key: K) -> None:
        lock = entry.lock
        # Free means unlocked *and* nobody else here: right after a release the lock
        # reads unlocked while it is promised to a woken waiter.
        if not lock.locked() and entry.users == 1:
            await lock.acquire()
            return
        self._waited += 1
        if timeout is None:
            await lock.acquire()
            return
        if timeout <= 0:  # try once: no task, no suspension
            self._timeouts += 1
            raise LockTimeout(f"lock {key!r} is held")
        try:
            await within(self._clock, lock.acquire(), timeout)
        except TimeoutError:
            self._timeouts += 1
            raise LockTimeout(f"lock {key!r} not free within {timeout:.2f}s") from None


class Priority(enum.IntEnum):
    """Lower runs first among work waiting for the same key."""

    INTERACTIVE = 0
    BACKGROUND = 1


class PriorityGate:
    """One holder at a time; the waiter with the lowest ``(priority, arrival)`` goes next.

    A waiter cancelled after it was handed the gate passes it on, so a cancellation
    never leaves the gate held by nobody.
    """

    __slots__ = ("_busy", "_order", "_waiters")

    def __init__(self) -> None:
        self._busy = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def free(self) -> bool:
        return not self._busy and not self._waiters

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    async def enter(self, priority: int) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.leave()  # handed the gate while being cancelled: pass it on
            raise

    def leave(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._busy = False


class SerialQueue(Generic[K]):
    """Work for one key runs one at a time, interactive before background.

    ``clock`` is needed only for :meth:`run`'s ``timeout``.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._gates: dict[K, PriorityGate] = {}
        self._clock = clock

    def active_keys(self) -> int:
        return len(self._gates)

    def holds(self, key: K) -> bool:
        """Whether work runs (or waits) for ``key`` right now."""
        return key in self._gates

    def depth(self, key: K) -> int:
        """Work waiting for ``key`` (not counting what runs)."""
        gate = self._gates.get(key)
        return gate.waiting if gate is not None else 0

    async def run(
        self,
        key: K,
        work: Callable[[], Awaitable[T]],
        *,
        priority: Priority = Priority.INTERACTIVE,
        timeout: float | None = None,
    ) -> T:
        """Run ``work`` in its turn; :class:`LockTimeout` (``work`` not started) when the
        turn did not come within ``timeout`` seconds."""
        if timeout is not None and self._clock is None:
            raise ValueError("SerialQueue.run(timeout=...) needs SerialQueue(clock)")
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = PriorityGate()
        try:
            await self._enter(gate, priority, timeout, key)
            try:
                return await work()
            finally:
                gate.leave()
        finally:
            if gate.free and self._gates.get(key) is gate:
                del self._gates[key]

    async def _enter(
        self, gate: PriorityGate, priority: Priority, timeout: float | None, key: K
    ) -> None:
        if timeout is None or gate.free or self._clock is None:
            await gate.enter(int(priority))
            return
        try:
            # A cancelled enter() that was handed the gate passes it on (PriorityGate).
            await within(self._clock, gate.enter(int(priority)), timeout)
        except TimeoutError:
            raise LockTimeout(f"no turn for {key!r} within {timeout:.2f}s") from None


class SingleFlight(Generic[K]):
    """At most one run of the same work per key at a time.

    In one process the joiners share the runner's result object itself (``result_type``
    is not needed to decode anything; it is accepted for the :class:`Flights` contract).
    ``clock`` is needed only to bound a joiner's wait (``timeout``, or the
    ``join_timeout`` default): then :class:`FlightTimeout`, while the run goes on.
    """

    def __init__(self, clock: Clock | None = None, *, join_timeout: float | None = None) -> None:
        if join_timeout is not None and clock is None:
            raise ValueError("SingleFlight(join_timeout=...) needs a clock")
        self._running: dict[K, asyncio.Future[Any]] = {}
        self._clock = clock
        self._join_timeout = join_timeout
        self._runs = 0
        self._joined = 0
        self._rejected = 0

    def active_keys(self) -> int:
        return len(self._running)

    def running(self, key: K) -> bool:
        return key in self._running

    def statistics(self) -> FlightStatistics:
        return FlightStatistics(
            active_keys=len(self._running),
            runs=self._runs,
            joined=self._joined,
            rejected=self._rejected,
        )

    async def join(
        self,
        key: K,
        work: Callable[[], Awaitable[T]],
        *,
        result_type: type[T] | None = None,
        timeout: float | None = None,
    ) -> T:
        """Run ``work``, or wait for the run already under way and share its result."""
        running = self._running.get(key)
        if running is None:
            return await self._first(key, work)
        self._joined += 1
        bound = timeout if timeout is not None else self._join_timeout
        if bound is None or self._clock is None:
            result: T = await asyncio.shield(running)
            return result
        try:
            shared: T = await within(self._clock, asyncio.shield(running), bound)
        except TimeoutError:
            raise FlightTimeout(f"{key!r} still running after {bound:.2f}s") from None
        return shared

    async def reject(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, or raise :class:`AlreadyRunning` when it is under way."""
        if key in self._running:
            self._rejected += 1
            raise AlreadyRunning(key)
        return await self._first(key, work)

    async def _first(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        self._runs += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # Joiners may all be gone: read the outcome so asyncio does not report it lost.
        future.add_done_callback(_retrieve)
        self._running[key] = future
        try:
            result = await work()
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[key]


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
