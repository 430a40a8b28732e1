"""Per-key coordination in one process: locks, serial queues, single flight.

Why our own: asyncio gives one lock, not one per key that disappears when unused, and
per-user maps that grow forever are one of the production stories behind steadybot.
Every structure here keeps an entry only while someone holds, waits for, or runs under
its key; :meth:`active_keys` says how many exist right now (a test can assert it
returns to zero).

- :class:`KeyedLock`: ``async with locks("user:1"):`` — FIFO per key, optional
  ``timeout`` on the injected clock (then :class:`LockTimeout`), and :meth:`holds`
  for "is someone already working on this key?".
- :class:`SerialQueue`: work for one key runs one at a time, *interactive* work before
  *background* work queued for the same key (a user's click is not stuck behind a
  nightly recalculation of their data); background work may be deferred by the
  caller.
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
from steadybot.errors import SteadybotError

__all__ = [
    "AlreadyRunning",
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


class AlreadyRunning(SteadybotError):
    """The same work is already running for this key (single flight, ``reject`` mode)."""

    def __init__(self, key: object) -> None:
        self.key = key
        super().__init__(f"already processing {key!r}")


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

    def active_keys(self) -> int:
        return len(self._entries)

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
    async def __call__(self, key: K, *, timeout: float | None = None) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            await self._acquire(entry.lock, timeout, key)
            entry.owner = asyncio.current_task()
            try:
                yield
            finally:
                entry.owner = None
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    async def _acquire(self, lock: asyncio.Lock, timeout: float | None, key: K) -> None:
        if timeout is None or not lock.locked():
            await lock.acquire()
            return
        try:
            await within(self._clock, lock.acquire(), timeout)
        except TimeoutError:
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
    """Work for one key runs one at a time, interactive before background."""

    def __init__(self) -> None:
        self._gates: dict[K, PriorityGate] = {}

    def active_keys(self) -> int:
        return len(self._gates)

    def depth(self, key: K) -> int:
        """Work waiting for ``key`` (not counting what runs)."""
        gate = self._gates.get(key)
        return gate.waiting if gate is not None else 0

    async def run(
        self, key: K, work: Callable[[], Awaitable[T]], *, priority: Priority = Priority.INTERACTIVE
    ) -> T:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = PriorityGate()
        try:
            await gate.enter(int(priority))
            try:
                return await work()
            finally:
                gate.leave()
        finally:
            if gate.free and self._gates.get(key) is gate:
                del self._gates[key]


class SingleFlight(Generic[K]):
    """At most one run of the same work per key at a time."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[Any]] = {}

    def active_keys(self) -> int:
        return len(self._running)

    def running(self, key: K) -> bool:
        return key in self._running

    async def join(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, or wait for the run already under way and share its result."""
        running = self._running.get(key)
        if running is not None:
            result: T = await asyncio.shield(running)
            return result
        return await self._first(key, work)

    async def reject(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, or raise :class:`AlreadyRunning` when it is under way."""
        if key in self._running:
            raise AlreadyRunning(key)
        return await self._first(key, work)

    async def _first(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
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
