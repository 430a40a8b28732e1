"""The select-menu reset manager: a select shows no pick again after every pick.

Discord keeps a user's pick showing in their select until the message is edited, so a
menu people pick from again and again (a price list, a role picker) must be edited
after each pick. The production story behind this module: a reset that worked five
times and failed on the sixth, because the cached message expired between fetch and
edit, edits went out with stale message copies, failures were silent, and a 1.5 s
debounce felt sluggish.

Why our own: the reset is specific to Discord's interaction model. Two paths:

- **In the answer** (preferred): a handler that answers with UPDATE_MESSAGE (type 7,
  ``interaction.update``, or ``respond`` in a ``reset=True`` handler, whose content
  then goes as a follow-up) re-renders the message in that answer: no channel edit,
  so none of Discord's 5-edits-per-5-s per channel, and the reset is instant. Not when
  the bot is changing the menu or changed it after the pick arrived (:meth:`lock`,
  :meth:`invalidate`): the pick's copy of the menu could predate that change.
- **Debounced edit** otherwise (the handler answered with a new message, e.g. an
  ephemeral price). Per message one job, which is also the message's lock, so two
  edits of one message never overlap:

  1. picks within ``debounce`` seconds of each other coalesce into one edit; picks that
     arrive while an edit is under way schedule one more edit after it;
  2. under the message's lock (:meth:`SelectResetManager.lock`, which the bot's own
     edits of the menu take too), the message is fetched fresh (never a cached or
     interaction copy, which may be stale) and its own components are written back, so
     a change the bot made is never undone by a reset that read the message before it;
  3. failures that survive the REST client's own retries are retried with full-jitter
     exponential backoff (``max_attempts``); a deleted message or channel ends the job
     cleanly;
  4. the message cache is invalidated after the edit.

Also here: counters (requested, in answer, succeeded, failed, retries, coalesced,
deleted, cache hits and misses, active locks), a health verdict from the success rate
and the number of active locks, a periodic sweep that ends jobs stuck past
``stale_after``, and a shutdown that flushes pending resets without their debounce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cachetools import TTLCache
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.clock import Clock, Timer
from steadybot.config import Settings
from steadybot.constants import ErrorCode
from steadybot.coordination.keyed import KeyedLock, LockTimeout
from steadybot.errors import DiscordHTTPError, RateLimitWait, TransportError
from steadybot.models import Message
from steadybot.resilience.retry import RetryPolicy
from steadybot.rest import RestClient

__all__ = ["ResetHealth", "ResetSettings", "ResetStatistics", "SelectResetManager"]

log = logging.getLogger("steadybot.components.reset")

_GONE_CODES = frozenset({ErrorCode.UNKNOWN_MESSAGE, ErrorCode.UNKNOWN_CHANNEL})


@dataclass(frozen=True, slots=True)
class ResetSettings:
    """Named limits of the reset manager (see ``STEADYBOT_RESET_*``)."""

    debounce: float = 0.25
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 4.0
    stale_after: float = 60.0
    sweep_interval: float = 10.0
    flush_timeout: float = 5.0
    cache_ttl: float = 30.0
    cache_size: int = 1_000
    healthy_success_rate: float = 0.8
    max_active_locks: int = 5
    answer_wait: float = 1.5  # below defer_after (2 s): the answer still beats the auto-defer
    answer_settle: float = 0.25

    @classmethod
    def from_settings(cls, settings: Settings) -> ResetSettings:
        return cls(
            debounce=settings.reset_debounce,
            max_attempts=settings.reset_max_attempts,
            backoff_base=settings.reset_backoff_base,
            backoff_cap=settings.reset_backoff_cap,
            stale_after=settings.reset_stale_after,
            sweep_interval=settings.reset_sweep_interval,
            flush_timeout=settings.reset_flush_timeout,
            cache_ttl=settings.message_cache_ttl,
            cache_size=settings.message_cache_size,
            healthy_success_rate=settings.reset_healthy_success_rate,
            max_active_locks=settings.reset_max_active_locks,
            answer_wait=settings.reset_answer_wait,
            answer_settle=settings.reset_answer_settle,
        )


@dataclass(frozen=True, slots=True)
class ResetStatistics:
    requested: int  # debounced resets asked for (picks whose answer did not reset)
    in_answer: int  # picks whose type-7 answer reset the menu (no API call)
    succeeded: int  # edits that reset a menu
    failed: int  # jobs given up after max_attempts
    retries: int
    coalesced: int  # picks that joined a pending edit instead of causing their own
    deleted: int  # jobs ended because the message or channel was gone
    swept: int  # jobs ended by the sweep for being stuck
    cache_hits: int
    cache_misses: int
    active_locks: int  # messages with a reset job now
    rest_calls: int  # fetches and edits sent

    @property
    def success_rate(self) -> float:
        done = self.succeeded + self.failed
        return self.succeeded / done if done else 1.0


@dataclass(frozen=True, slots=True)
class ResetHealth:
    status: Literal["healthy", "warning", "critical"]
    reasons: tuple[str, ...]


class _Job:
    """The pending and running reset of one message."""

    __slots__ = ("channel_id", "dirty", "started", "task")

    def __init__(self, channel_id: str, started: float) -> None:
        self.channel_id = channel_id
        self.dirty = True  # a pick is waiting for an edit that starts after it
        self.started = started
        self.task: asyncio.Task[None] | None = None


class SelectResetManager:
    """Resets select menus after picks: in the answer when possible, else by a safe edit."""

    def __init__(
        self,
        rest: RestClient,
        *,
        clock: Clock,
        settings: ResetSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._rest = rest
        self._clock = clock
        self.settings = settings or ResetSettings()
        self._retry = RetryPolicy(
            max_attempts=self.settings.max_attempts,
            base=self.settings.backoff_base,
            cap=self.settings.backoff_cap,
        )
        self._rng = rng or random.Random()
        self._jobs: dict[str, _Job] = {}
        self._locks: KeyedLock[str] = KeyedLock(clock)  # one per menu, gone when idle
        # message id → monotonic time the bot last changed it (edits under lock,
        # invalidate()); kept as long as a pick could still carry an older copy.
        self._changed: TTLCache[str, float] = TTLCache(
            maxsize=self.settings.cache_size, ttl=self.settings.cache_ttl, timer=clock.monotonic
        )
        # message id → (monotonic time of the change, Discord's edited_timestamp of it)
        # for the bot's last edit that said when Discord made it
        self._edited: TTLCache[str, tuple[float, float]] = TTLCache(
            maxsize=self.settings.cache_size, ttl=self.settings.cache_ttl, timer=clock.monotonic
        )
        # message id → when a pick's answer last reset it from its own copy
        self._ridden: TTLCache[str, float] = TTLCache(
            maxsize=self.settings.cache_size,
            ttl=max(self.settings.answer_settle, 0.001),
            timer=clock.monotonic,
        )
        self._cache: TTLCache[str, Message] = TTLCache(
            maxsize=self.settings.cache_size, ttl=self.settings.cache_ttl, timer=clock.monotonic
        )
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "requested",
                "in_answer",
                "succeeded",
                "failed",
                "retries",
                "coalesced",
                "deleted",
                "swept",
                "cache_hits",
                "cache_misses",
                "rest_calls",
            ),
            0,
        )
        self._sweeper: Timer | None = None
        self._flush = asyncio.Event()  # set at shutdown: pending resets skip their debounce
        self._closed = False

    # --- what handlers and the bot call ----------------------------------------------

    @contextlib.asynccontextmanager
    async def answering(
        self, message_id: str, arrived_at: float, edited_timestamp: str | None = None
    ) -> AsyncIterator[bool]:
        """Hold the menu's lock while a pick's answer resets it from the pick's own copy.

        Yields whether that copy is safe to write back: not when the bot changed the
        menu after the pick arrived (:meth:`lock`, :meth:`invalidate`), since the copy
        would undo the change. Holding the lock keeps a change from landing between
        this check and the answer.
        """
        if self._locks.held_here(message_id):
            yield False  # the handler itself holds the lock: waiting would deadlock
            return
        try:
            async with self._locks(message_id, timeout=self.settings.answer_wait):
                changed = self._changed.get(message_id, float("-inf"))
                current = changed < arrived_at
                edit = self._edited.get(message_id)
                if not current and edit is not None and edit[0] >= changed:
                    # The pick's copy shows the bot's last change: it was made after it.
                    shown = _instant(edited_timestamp)
                    current = shown is not None and shown >= edit[1]
                yield current
                if current:
                    # Written, but Discord may apply it a moment later: lock() waits.
                    self._ridden[message_id] = self._clock.monotonic()
        except LockTimeout:
            # The lock stays held (an edit waiting for Discord's edit bucket): answer
            # plainly now rather than keep the user waiting; the manager resets later.
            yield False

    def reset_in_answer(self) -> None:
        """A pick's answer updated the message (type 7): the menu is reset already."""
        self._counts["in_answer"] += 1

    def request(self, channel_id: str, message_id: str) -> None:
        """Reset the menu on ``message_id`` soon (debounced, coalesced with other picks)."""
        if self._closed:
            log.warning("reset of message %s asked after shutdown; not done", message_id)
            return
        self._counts["requested"] += 1
        self._cache.pop(message_id, None)  # whatever is cached predates this pick
        job = self._jobs.get(message_id)
        if job is not None:
            if job.dirty:
                self._counts["coalesced"] += 1
            job.dirty = True
            return
        job = self._jobs[message_id] = _Job(channel_id, self._clock.monotonic())
        job.task = asyncio.ensure_future(self._run(message_id, job))
        self._ensure_sweeper()

    async def message(self, channel_id: str, message_id: str) -> Message:
        """A message for reading (e.g. a menu's options), cached for ``cache_ttl`` s."""
        cached = self._cache.get(message_id)
        if cached is not None:
            self._counts["cache_hits"] += 1
            return cached
        self._counts["cache_misses"] += 1
        self._counts["rest_calls"] += 1
        fetched = await self._rest.get_message(channel_id, message_id)
        self._cache[message_id] = fetched
        return fetched

    @contextlib.asynccontextmanager
    async def lock(self, message_id: str) -> AsyncIterator[None]:
        """Hold ``message_id``'s lock: take it around the bot's own edits of a menu, so a
        reset's read-and-write of the message never straddles them, and picks that
        arrived before the edit do not reset the menu from their older copy. The
        lock's entry is gone as soon as nobody holds or waits for it."""
        try:
            async with self._locks(message_id):
                # A pick's type-7 answer just written may not be applied yet; an edit
                # that overtook it would be undone by it. Give it ``answer_settle``.
                ridden = self._ridden.get(message_id)
                if ridden is not None:
                    wait = ridden + self.settings.answer_settle - self._clock.monotonic()
                    if wait > 0:
                        await self._clock.sleep(wait)
                yield
        finally:
            # Also when the edit failed: it may have reached Discord all the same.
            self._changed[message_id] = self._clock.monotonic()

    def invalidate(self, message_id: str, edited: Message | None = None) -> None:
        """Forget a cached message (the bot changed it). With ``edited`` (the message the
        edit returned), a pick whose copy is at least that recent may still reset the
        menu from its copy: it was made after the change."""
        self._cache.pop(message_id, None)
        now = self._changed[message_id] = self._clock.monotonic()
        # A change without a readable time voids the one before: _edited's first item is
        # then older than _changed.
        edited_at = _instant(edited.edited_timestamp if edited is not None else None)
        if edited_at is not None:
            self._edited[message_id] = (now, edited_at)

    # --- introspection -------------------------------------------------------------------

    def statistics(self) -> ResetStatistics:
        busy = len(self._jobs.keys() | self._locks.keys())  # messages with a job or a lock
        return ResetStatistics(**self._counts, active_locks=busy)

    def health(self) -> ResetHealth:
        """``critical`` below the success rate, ``warning`` with too many active locks."""
        stats = self.statistics()
        reasons: list[str] = []
        status: Literal["healthy", "warning", "critical"] = "healthy"
        if stats.success_rate < self.settings.healthy_success_rate:
            status = "critical"
            reasons.append(
                f"reset success {stats.success_rate:.0%} < {self.settings.healthy_success_rate:.0%}"
            )
        if stats.active_locks > self.settings.max_active_locks:
            status = "critical" if status == "critical" else "warning"
            reasons.append(
                f"{stats.active_locks} active reset locks > {self.settings.max_active_locks}"
            )
        return ResetHealth(status, tuple(reasons))

    def collect(self) -> Iterator[Metric]:
        """Prometheus metric families of the counters (registered by the bot)."""
        stats = self.statistics()
        resets = CounterMetricFamily(
            "steadybot_menu_resets", "Select-menu resets, by outcome.", labels=["outcome"]
        )
        for outcome in ("requested", "in_answer", "succeeded", "failed", "coalesced", "deleted"):
            resets.add_metric([outcome], getattr(stats, outcome))
        yield resets
        yield CounterMetricFamily(
            "steadybot_menu_reset_retries", "Reset edits retried.", value=stats.retries
        )
        cache = CounterMetricFamily(
            "steadybot_message_cache", "Message cache lookups, by result.", labels=["result"]
        )
        cache.add_metric(["hit"], stats.cache_hits)
        cache.add_metric(["miss"], stats.cache_misses)
        yield cache
        yield GaugeMetricFamily(
            "steadybot_menu_locks",
            "Menus with a reset job or a held lock.",
            value=stats.active_locks,
        )

    @property
    def pending(self) -> Mapping[str, str]:
        """Messages with a reset job: message id → channel id."""
        return {message_id: job.channel_id for message_id, job in self._jobs.items()}

    # --- the job -------------------------------------------------------------------------

    async def _run(self, message_id: str, job: _Job) -> None:
        try:
            while job.dirty:
                await self._debounce()
                job.started = self._clock.monotonic()  # the sweep measures this edit's age
                job.dirty = False  # picks from now on need another edit after this one
                if not await self._reset(message_id, job.channel_id):
                    break
        except Exception:  # e.g. a shared rate-limit store down: counted, not lost quietly
            self._counts["failed"] += 1
            log.exception("reset of menu %s failed", message_id)
        finally:
            if self._jobs.get(message_id) is job:
                del self._jobs[message_id]

    async def _debounce(self) -> None:
        """Wait ``debounce`` seconds for more picks, or less when shutdown flushes."""
        if self._flush.is_set():
            return
        sleep = asyncio.ensure_future(self._clock.sleep(self.settings.debounce))
        flush = asyncio.ensure_future(self._flush.wait())
        try:
            await asyncio.wait((sleep, flush), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            flush.cancel()

    async def _reset(self, message_id: str, channel_id: str) -> bool:
        """One reset with retries; False when the message is gone or it gave up."""
        attempt = 0
        while True:
            try:
                # The lock alone, not lock(): writing the menu back unchanged is no change.
                async with self._locks(message_id):
                    self._counts["rest_calls"] += 1
                    fresh = await self._rest.get_message(channel_id, message_id)
                    self._counts["rest_calls"] += 1
                    # Its own, current components: nothing changed since the read.
                    body = {"components": fresh.components}
                    await self._rest.edit_message(channel_id, message_id, body)
            except DiscordHTTPError as exc:
                if exc.code in _GONE_CODES:
                    self._counts["deleted"] += 1
                    self._cache.pop(message_id, None)
                    log.info("menu %s is gone; its reset ends", message_id)
                    return False
                failure: Exception = exc
            except (TransportError, RateLimitWait) as exc:
                failure = exc
            else:
                self._counts["succeeded"] += 1
                self._cache.pop(message_id, None)
                return True
            if not self._retry.can_retry(attempt):
                self._counts["failed"] += 1
                log.error(
                    "reset of menu %s failed after %d attempts: %s",
                    message_id,
                    attempt + 1,
                    failure,
                )
                return False
            self._counts["retries"] += 1
            wait = self._retry.backoff(attempt, self._rng)
            log.warning("reset of menu %s failed (%s); retry in %.2fs", message_id, failure, wait)
            attempt += 1
            await self._clock.sleep(wait)

    # --- upkeep and shutdown -------------------------------------------------------------

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None and not self._closed:
            self._sweeper = self._clock.call_later(self.settings.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        """End jobs stuck past ``stale_after`` (a hung request) so their lock frees."""
        self._sweeper = None
        now = self._clock.monotonic()
        for message_id, job in list(self._jobs.items()):
            if now - job.started > self.settings.stale_after and job.task is not None:
                log.warning(
                    "reset of menu %s stuck for %.0fs; ended", message_id, now - job.started
                )
                self._counts["swept"] += 1
                job.task.cancel()
                del self._jobs[message_id]
        if self._jobs:
            self._ensure_sweeper()

    async def close(self) -> None:
        """Flush pending resets at once (no debounce), up to ``flush_timeout`` seconds."""
        self._closed = True
        self._flush.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if not tasks:
            return
        _, unfinished = await asyncio.wait(tasks, timeout=self.settings.flush_timeout)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.warning("%d menu resets did not finish within the shutdown flush", len(unfinished))


def _instant(timestamp: str | None) -> float | None:
    """An ISO 8601 timestamp (Discord's ``edited_timestamp``) as epoch seconds; ``None``
    when absent or unreadable (then never taken as recent enough)."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None
