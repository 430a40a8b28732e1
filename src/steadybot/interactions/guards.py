"""Handler options ``exclusive=`` and ``serialize=``, and background work per key.

Two production stories: a user double-clicks and the bot creates two channels; a
background job recalculates a user's data while the user's own click changes it. The
options put a handler under one of the coordination primitives without code in it:

- ``exclusive="user"`` (or ``"guild"``, ``"channel"``, ``"message"``, or a function of
  the interaction returning a key): while this handler runs for a key, another
  interaction for the same key is answered with the busy message (ephemeral) and the
  handler does not run. The key includes the handler's name, so two different buttons
  do not block each other; a key function's key is used as it is (share it between
  handlers on purpose). Implemented as a lock tried once (``timeout=0``).
- ``serialize="user"`` (same key kinds): one at a time per key, in arrival order,
  interactive work before background work (:meth:`HandlerGuards.background`) waiting
  for the same key. The key is ``"user:{id}"`` (``"guild:{id}"``, …) or the key
  function's, *without* the handler's name: every serialized handler and background job
  of a user queue together. A turn that does not come within ``serialize_wait``
  seconds ends with an ephemeral "try again" (a stuck key cannot hold users forever).

The guard runs inside the handler's call, so the runtime's auto-defer covers the wait:
the interaction is deferred at ``defer_after`` while it waits for its turn.

With Redis configured (``STEADYBOT_REDIS_URL``) ``exclusive`` holds across every
process of the bot (a double click routed to two processes runs once), and a
serialized turn also takes the key's Redis lock, so work for one key runs one at a time
across processes. Arrival order and interactive-before-background priority are kept
among the waiters of one process; across processes the next one is whoever polls the
free lock first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal, TypeVar, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.coordination.backends import Coordination
from steadybot.coordination.contracts import (
    Flights,
    FlightStatistics,
    Locks,
    LockStatistics,
)
from steadybot.coordination.keyed import LockTimeout, Priority, SerialQueue
from steadybot.errors import UserFacingError
from steadybot.interactions.context import Interaction

__all__ = [
    "EXCLUSIVE_KEY",
    "SERIAL_KEY",
    "Busy",
    "GuardOptions",
    "GuardStatistics",
    "HandlerGuards",
    "KeyKind",
    "KeySource",
    "TurnTimeout",
    "interaction_key",
]

log = logging.getLogger("steadybot.guards")

T = TypeVar("T")
KeyKind = Literal["user", "guild", "channel", "message"]
KeySource = KeyKind | Callable[[Interaction], str]
"""What an ``exclusive=``/``serialize=`` key is made of."""
_KINDS: Final = frozenset(get_args(KeyKind))

EXCLUSIVE_KEY: Final = "exclusive"
"""Lock key part of ``exclusive=``: ``exclusive:{handler}:{key}``."""
SERIAL_KEY: Final = "serial"
"""Lock key part of a serialized turn across processes: ``serial:{key}``."""


class Busy(UserFacingError):
    """An ``exclusive=`` handler already runs for this key; the user sees ``message``."""


class TurnTimeout(UserFacingError):
    """A ``serialize=`` handler's turn did not come within ``serialize_wait``."""


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """A handler's coordination options, as given to ``bot.component(...)`` & co."""

    exclusive: KeySource | None = None
    serialize: KeySource | None = None
    priority: Priority = Priority.INTERACTIVE
    busy: str | None = None  # None: settings.busy_message

    @property
    def active(self) -> bool:
        return self.exclusive is not None or self.serialize is not None

    def check(self, handler: str, *, component: bool) -> None:
        """Refuse at registration what cannot make a key."""
        for option, source in (("exclusive", self.exclusive), ("serialize", self.serialize)):
            if source is None or callable(source):
                continue
            if source not in _KINDS:
                raise ValueError(
                    f"handler {handler!r}: {option}={source!r}; use one of "
                    f"{sorted(_KINDS)} or a function of the interaction"
                )
            if source == "message" and not component:
                raise ValueError(f"handler {handler!r}: {option}='message' needs a component")
        if self.busy is not None and not self.busy.strip():
            raise ValueError(f"handler {handler!r}: busy= must not be empty")
        if not isinstance(self.priority, Priority):
            raise TypeError(f"handler {handler!r}: priority must be a Priority")


def interaction_key(source: KeySource, interaction: Interaction) -> str:
    """``"user:{id}"``, ``"guild:{id}"``, ``"channel:{id}"``, ``"message:{id}"``, or the key
    function's result. An interaction without a guild (a DM) or a channel falls back to
    its user's key."""
    if callable(source):
        key = source(interaction)
        if not isinstance(key, str) or not key:
            raise TypeError(f"a key function must return a non-empty str, got {key!r}")
        return key
    ident: str | None
    if source == "guild":
        ident = interaction.guild_id
    elif source == "channel":
        ident = interaction.channel_id
    elif source == "message":
        message = interaction.message
        ident = None if message is None else message.id
    else:
        ident = None
    if ident is None:
        return f"user:{interaction.user_id}"
    return f"{source}:{ident}"


@dataclass(frozen=True, slots=True)
class GuardStatistics:
    """What the handler guards did since start, and the keys active now."""

    backend: str  # "local" or "redis"
    busy: int  # interactions answered with the busy message (handler not run)
    serialized: int  # serialized runs (handlers and background jobs) that got their turn
    waited: int  # of those, how many had to wait for it
    wait_seconds: float  # total time waited for turns
    turn_timeouts: int  # turns that did not come in time (users told to retry)
    background_done: int
    background_failed: int
    background_dropped: int  # background work whose turn did not come in background_wait
    serial_keys: int  # keys with serialized work running or waiting now
    locks: LockStatistics
    flights: FlightStatistics


class HandlerGuards:
    """Runs guarded handlers and background work on one :class:`Coordination`."""

    def __init__(self, coordination: Coordination, *, clock: Clock, settings: Settings) -> None:
        self._coordination = coordination
        self._clock = clock
        self._settings = settings
        self._busy = 0
        self._serialized = 0
        self._waited = 0
        self._wait_seconds = 0.0
        self._turn_timeouts = 0
        self._background = {"done": 0, "failed": 0, "dropped": 0}

    @property
    def locks(self) -> Locks:
        return self._coordination.locks

    @property
    def flights(self) -> Flights:
        return self._coordination.flights

    @property
    def queue(self) -> SerialQueue[str]:
        return self._coordination.queue

    @property
    def shared(self) -> bool:
        return self._coordination.shared

    async def run(
        self,
        options: GuardOptions,
        handler: str,
        interaction: Interaction,
        call: Callable[[], Awaitable[object]],
    ) -> object:
        """Run ``call`` (the handler) under ``options``; :class:`Busy` or
        :class:`TurnTimeout` (user-facing errors) when it must not run."""
        async with contextlib.AsyncExitStack() as stack:
            if options.exclusive is not None:
                key = interaction_key(options.exclusive, interaction)
                if not callable(options.exclusive):
                    key = f"{EXCLUSIVE_KEY}:{handler}:{key}"
                try:
                    await stack.enter_async_context(self.locks(key, timeout=0))
                except LockTimeout:
                    self._busy += 1
                    log.info(
                        "handler %s: %s is busy (interaction %s)", handler, key, interaction.id
                    )
                    raise Busy(options.busy or self._settings.busy_message) from None
            if options.serialize is None:
                return await call()
            key = interaction_key(options.serialize, interaction)
            try:
                return await self._in_turn(
                    key, call, options.priority, self._settings.serialize_wait
                )
            except TurnTimeout:
                log.warning("handler %s: no turn for %s in time", handler, key)
                raise

    async def background(
        self, key: str, work: Callable[[], Awaitable[object]], *, delay: float = 0.0
    ) -> None:
        """Run ``work`` for ``key`` at background priority: after the interactive work
        waiting for the same key, after ``delay`` seconds, within ``background_wait``.
        Failures are logged and counted, never raised (nobody awaits this)."""
        if delay > 0:
            await self._clock.sleep(delay)
        try:
            await self._in_turn(key, work, Priority.BACKGROUND, self._settings.background_wait)
        except TurnTimeout:
            self._background["dropped"] += 1
            log.warning("background work for %s dropped: no turn in time", key)
        except Exception:
            self._background["failed"] += 1
            log.exception("background work for %s failed", key)
        else:
            self._background["done"] += 1

    async def _in_turn(
        self, key: str, work: Callable[[], Awaitable[T]], priority: Priority, wait: float
    ) -> T:
        started = self._clock.monotonic()
        queued = self.queue.holds(key)
        began = False

        async def turn() -> T:
            nonlocal began
            if not self.shared:
                began = True
                self._count_turn(queued, started)
                return await work()
            remaining = max(0.0, wait - (self._clock.monotonic() - started))
            async with self.locks(f"{SERIAL_KEY}:{key}", timeout=remaining):
                began = True
                self._count_turn(queued, started)
                return await work()

        try:
            return await self.queue.run(key, turn, priority=priority, timeout=wait)
        except LockTimeout:
            if began:
                raise  # the work's own
            self._turn_timeouts += 1
            raise TurnTimeout(self._settings.serialize_timeout_message) from None

    def _count_turn(self, queued: bool, started: float) -> None:
        waited = self._clock.monotonic() - started
        self._serialized += 1
        if queued or waited > 0:
            self._waited += 1
            self._wait_seconds += waited

    def statistics(self) -> GuardStatistics:
        return GuardStatistics(
            backend=self._coordination.backend,
            busy=self._busy,
            serialized=self._serialized,
            waited=self._waited,
            wait_seconds=self._wait_seconds,
            turn_timeouts=self._turn_timeouts,
            background_done=self._background["done"],
            background_failed=self._background["failed"],
            background_dropped=self._background["dropped"],
            serial_keys=self.queue.active_keys(),
            locks=self.locks.statistics(),
            flights=self.flights.statistics(),
        )

    def collect(self) -> Iterator[Metric]:
        """Metric families for ``bot.metrics`` (read from :meth:`statistics`)."""
        stats = self.statistics()
        yield CounterMetricFamily(
            "steadybot_busy_rejections",
            "Interactions answered 'already working' by an exclusive= handler.",
            value=stats.busy,
        )
        yield CounterMetricFamily(
            "steadybot_serialized_turns",
            "Serialized runs that got their turn.",
            value=stats.serialized,
        )
        yield CounterMetricFamily(
            "steadybot_serialized_waits",
            "Serialized runs that waited for their turn.",
            value=stats.waited,
        )
        yield CounterMetricFamily(
            "steadybot_serialized_wait_seconds",
            "Time serialized runs waited for their turn.",
            value=stats.wait_seconds,
        )
        yield CounterMetricFamily(
            "steadybot_serialized_timeouts",
            "Serialized turns that did not come in time.",
            value=stats.turn_timeouts,
        )
        background = CounterMetricFamily(
            "steadybot_background_jobs", "bot.background work, by outcome.", labels=["outcome"]
        )
        for outcome in ("done", "failed", "dropped"):
            background.add_metric([outcome], self._background[outcome])
        yield background
        active = GaugeMetricFamily(
            "steadybot_coordination_active_keys",
            "Keys in use in this process now, by structure.",
            labels=["structure"],
        )
        active.add_metric(["lock"], stats.locks.active_keys)
        active.add_metric(["serial"], stats.serial_keys)
        active.add_metric(["flight"], stats.flights.active_keys)
        yield active
        locks = CounterMetricFamily(
            "steadybot_lock_events", "Keyed-lock events, by kind.", labels=["event", "backend"]
        )
        for event, count in (
            ("acquired", stats.locks.acquired),
            ("waited", stats.locks.waited),
            ("timeout", stats.locks.timeouts),
            ("lost", stats.locks.lost),
        ):
            locks.add_metric([event, stats.backend], count)
        yield locks
        flights = CounterMetricFamily(
            "steadybot_flight_events", "Single-flight events, by kind.", labels=["event"]
        )
        flights.add_metric(["run"], stats.flights.runs)
        flights.add_metric(["joined"], stats.flights.joined)
        flights.add_metric(["rejected"], stats.flights.rejected)
        yield flights

    async def close(self) -> None:
        await self._coordination.close()
