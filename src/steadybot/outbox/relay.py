"""The :class:`OutboxRelay`: claims due items and delivers them, until done or dead.

One pass (:meth:`OutboxRelay.run_once`): claim a batch (committed as SENDING, see
:meth:`Outbox.claim`), then deliver its items concurrently through the
:class:`~steadybot.rest.RestClient` (which already retries 5xx and waits out 429s
within the call's deadline). Each item ends its attempt in one of three ways:

- **delivered**: Discord confirmed it (or the in-doubt check found it);
- **retry**: no answer, a 429 or a 5xx: back to PENDING, due after a full-jitter
  backoff (doubling from ``backoff_base`` up to ``backoff_cap``), never past the
  item's expiry;
- **dead**: the token expired or Discord said it is dead (10015, 10062, 50027) and no
  fallback is allowed or possible, or a 4xx that a retry cannot fix. A dead token with
  a fallback allowed posts the message to the channel (a DM for ephemeral answers)
  instead, recorded as ``delivered_via=channel``/``dm``.

Before an attempt goes out, its route (token or channel) is committed on the row; a
claim that finds a SENDING row whose lease lapsed knows the attempt it inherits and
resolves it per kind (the theory in :mod:`steadybot.outbox`).

The loop wakes on :meth:`Outbox.notify` (an enqueue in this process), else polls every
``poll_interval`` (work committed by other processes, retries coming due, restarts).
A woken pass that finds nothing looks again shortly: on PostgreSQL the enqueuing
transaction may not have committed yet when the wake-up arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.clock import Clock
from steadybot.constants import INTERACTION_TOKEN_LIFETIME
from steadybot.errors import DiscordHTTPError
from steadybot.observability.health import Status
from steadybot.outbox.delivery import (
    find_in_channel,
    is_retryable,
    open_dm,
    send_channel,
    send_with_token,
)
from steadybot.outbox.models import DeliveryKind, DeliveryRoute, OutboxStatistics
from steadybot.outbox.settings import OutboxSettings
from steadybot.outbox.store import ClaimedItem, Outbox
from steadybot.resilience.retry import backoff_ceiling
from steadybot.rest import RestClient

__all__ = ["OutboxRelay"]

log = logging.getLogger("steadybot.outbox")

# Seconds a woken pass that found nothing waits before looking again (PostgreSQL: the
# enqueuing transaction commits just after the wake-up).
_WAKE_RETRIES: Final = (0.02, 0.1, 0.3)
_BACKLOG_EVERY: Final = 1.0  # seconds between two reads of the backlog for statistics
_PURGE_EVERY: Final = 300.0  # seconds between deletions of items past their retention
# Seconds after an interaction arrived during which a "dead token" answer is retried.
_ACK_GRACE: Final = 10.0


@dataclass(frozen=True, slots=True)
class _Delivered:
    route: DeliveryRoute
    message_id: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class _Retry:
    error: str


@dataclass(frozen=True, slots=True)
class _Dead:
    reason: str


_Outcome = _Delivered | _Retry | _Dead


def _reason(exc: DiscordHTTPError) -> str:
    """A dead-letter reason that groups well: ``unknown webhook 10015``, ``4xx 400 50035``."""
    names = {10015: "unknown webhook", 10062: "unknown interaction", 50027: "invalid token"}
    if exc.code in names:
        return f"{names[exc.code]} {exc.code}"
    return f"4xx {exc.status} {exc.code}"


class OutboxRelay:
    """Delivers what an :class:`Outbox` holds; ``start()``/``close()``, or drive it with
    :meth:`run_once` (tests)."""

    def __init__(
        self,
        outbox: Outbox,
        rest: RestClient,
        *,
        clock: Clock | None = None,
        settings: OutboxSettings | None = None,
        relay_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self._rest = rest
        self._clock: Clock = clock or outbox.clock
        self.settings = settings if settings is not None else outbox.settings
        self.relay_id = relay_id or uuid.uuid4().hex[:16]
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._counts: collections.Counter[str] = collections.Counter()
        self._dead_by_reason: collections.Counter[str] = collections.Counter()
        self._via: collections.Counter[str] = collections.Counter()
        self._resolved: collections.Counter[str] = collections.Counter()
        self._resolutions: dict[int, str] = {}  # item id → how its doubt was resolved
        self._backlog: tuple[int, int, float | None] = (0, 0, None)
        self._backlog_at: float | None = None
        self._purged_at: float | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.relay_id}")

    async def close(self) -> None:
        """Stop the loop. An attempt cut off mid-call stays SENDING: the next claim
        after its lease treats it as in doubt, as after a crash."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        woken = False
        while True:
            try:
                handled = await self.run_once()
                await self._refresh_backlog()
                await self._purge_now_and_then()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: keep trying
                self._counts["poll_failures"] += 1
                log.warning("outbox relay pass failed: %s: %s", type(exc).__name__, exc)
                handled = 0
            if handled >= self.settings.batch_size:
                continue  # more is due right now
            if handled == 0 and woken:
                handled = await self._look_again()
                if handled:
                    continue
            woken = await self._wait()

    async def _look_again(self) -> int:
        for delay in _WAKE_RETRIES:
            await self._clock.sleep(delay)
            try:
                handled = await self.run_once()
            except Exception:  # the main loop logs the next failure
                return 0
            if handled:
                return handled
        return 0

    async def _wait(self) -> bool:
        """Sleep until woken, the next retry is due, or the poll interval ends."""
        wakeup = self.outbox.wakeup
        if wakeup.is_set():
            wakeup.clear()
            return True
        timeout = self.settings.poll_interval
        try:
            due = await self.outbox.next_due()
        except Exception:
            due = None
        if due is not None:
            timeout = max(0.0, min(timeout, due - self._clock.time()))
        waiter = asyncio.ensure_future(wakeup.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)
        woken = wakeup.is_set()
        wakeup.clear()
        return woken

    # --- one pass ------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due items and deliver it; returns how many were claimed."""
        self._counts["polls"] += 1
        items = await self.outbox.claim(self.relay_id, limit=self.settings.batch_size)
        if items:
            await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def drain(self, *, passes: int = 1000) -> int:
        """Run passes until one finds nothing due; returns the items handled (tests,
        shutdown tools). Items backing off are not waited for."""
        total = 0
        for _ in range(passes):
            handled = await self.run_once()
            if not handled:
                break
            total += handled
        await self._refresh_backlog(force=True)
        return total

    async def purge(self) -> int:
        """Delete items that ended longer than ``retention`` ago (0: keep forever)."""
        if self.settings.retention <= 0:
            return 0
        return await self.outbox.purge(older_than=self._clock.time() - self.settings.retention)

    async def _purge_now_and_then(self) -> None:
        now = self._clock.monotonic()
        if self._purged_at is None or now - self._purged_at >= _PURGE_EVERY:
            self._purged_at = now
            await self.purge()

    async def _deliver(self, item: ClaimedItem) -> None:
        try:
            outcome = await self._attempt(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or the database: the item stays safe to redo
            log.exception("outbox item %s: unexpected failure", item.id)
            outcome = _Retry(f"{type(exc).__name__}: {exc}")
        resolution = self._resolution_of(item)
        try:
            await self._finish(item, outcome, resolution)
        except Exception as exc:  # the lease lapses and a later claim resolves it
            log.warning(
                "outbox item %s: could not record %s: %s", item.id, type(outcome).__name__, exc
            )

    async def _finish(self, item: ClaimedItem, outcome: _Outcome, resolution: str | None) -> None:
        outbox = self.outbox
        if isinstance(outcome, _Delivered):
            recorded = await outbox.finish_delivered(
                item,
                self.relay_id,
                route=outcome.route,
                message_id=outcome.message_id,
                resolution=resolution,
                note=outcome.note,
            )
            if recorded:
                self._counts["delivered"] += 1
                self._via[str(outcome.route)] += 1
        elif isinstance(outcome, _Dead):
            recorded = await outbox.finish_dead(
                item, self.relay_id, reason=outcome.reason, resolution=resolution
            )
            if recorded:
                self._counts["dead_lettered"] += 1
                self._dead_by_reason[outcome.reason] += 1
                log.warning(
                    "outbox item %s (%s, interaction %s) dead-lettered: %s",
                    item.id,
                    item.kind,
                    item.interaction_id,
                    outcome.reason,
                )
        else:
            recorded = await outbox.reschedule(
                item,
                self.relay_id,
                at=self._next_attempt(item),
                error=outcome.error,
                resolution=resolution,
            )
            if recorded:
                self._counts["retried"] += 1
        if not recorded:
            self._counts["lost_leases"] += 1
            log.warning("outbox item %s: lease lost to another relay; its result stands", item.id)

    def _next_attempt(self, item: ClaimedItem) -> float:
        settings = self.settings
        ceiling = backoff_ceiling(
            item.attempts - 1, base=settings.backoff_base, cap=settings.backoff_cap
        )
        at = self._clock.time() + self._rng.uniform(0, ceiling)  # full jitter
        if item.kind.uses_token and item.expires_at is not None and at > item.expires_at:
            # Past the token's life only the fallback is left: try it right at expiry.
            at = max(self._clock.time(), item.expires_at)
        return at

    # --- the attempt -------------------------------------------------------------------

    async def _attempt(self, item: ClaimedItem) -> _Outcome:
        now = self._clock.time()
        token_alive = item.kind.uses_token and item.expires_at is not None and now < item.expires_at
        if item.in_doubt:
            self._counts["in_doubt_found"] += 1
            settled = await self._resolve_in_doubt(item, token_alive=token_alive)
            if settled is not None:
                return settled
        if item.kind is DeliveryKind.CHANNEL_MESSAGE:
            assert item.channel_id is not None
            return await self._send_channel(item, item.channel_id, DeliveryRoute.CHANNEL)
        if not token_alive:
            return await self._fallback(item, "token expired")
        if not await self.outbox.mark_route(item, self.relay_id, DeliveryRoute.TOKEN):
            return _Retry("lease lost before sending")
        assert item.expires_at is not None
        deadline = self._deadline(min(item.expires_at, item.lease_until))
        try:
            message = await send_with_token(self._rest, item, deadline=deadline)
        except DiscordHTTPError as exc:
            if exc.token_is_dead and self._just_arrived(item):
                return _Retry(f"{exc} (the initial response may not be applied yet)")
            if exc.token_is_dead:
                return await self._fallback(item, _reason(exc))
            if is_retryable(exc):
                return _Retry(str(exc))
            return _Dead(_reason(exc))
        except Exception as exc:
            if is_retryable(exc):
                return _Retry(f"{type(exc).__name__}: {exc}")
            raise
        return _Delivered(DeliveryRoute.TOKEN, message.id)

    def _just_arrived(self, item: ClaimedItem) -> bool:
        """Within seconds of the interaction: a "dead token" answer may only mean that
        Discord has not applied our initial response yet, so it is worth a retry."""
        assert item.expires_at is not None
        arrived = item.expires_at - (INTERACTION_TOKEN_LIFETIME - self.settings.expiry_margin)
        return self._clock.time() - arrived < _ACK_GRACE

    def _deadline(self, wall: float) -> float:
        """A wall-clock limit as the monotonic deadline the REST client takes."""
        return self._clock.monotonic() + max(0.0, wall - self._clock.time())

    async def _fallback(self, item: ClaimedItem, reason: str) -> _Outcome:
        """The token is dead: post to the channel (a DM for ephemeral answers) if
        allowed, else dead-letter with ``reason``."""
        settings = self.settings
        if not (item.fallback and settings.fallback_to_channel):
            return _Dead(reason)
        expires = item.expires_at if item.expires_at is not None else item.created_at
        if self._clock.time() > expires + settings.channel_ttl:
            return _Dead(f"{reason}; fallback gave up")
        target, route = item.fallback_channel_id, DeliveryRoute.CHANNEL
        if target is None and not item.ephemeral:
            target = item.channel_id
        if (
            target is None
            and item.ephemeral
            and settings.fallback_dm_for_ephemeral
            and item.user_id
        ):
            route = DeliveryRoute.DM
            try:
                target = await open_dm(self._rest, item.user_id)
            except Exception as exc:
                if is_retryable(exc):
                    return _Retry(f"{reason}; opening the DM failed: {exc}")
                return _Dead(f"{reason}; no DM: {exc}")
        if target is None:
            return _Dead(f"{reason}; no fallback route")
        outcome = await self._send_channel(item, target, route)
        if isinstance(outcome, _Delivered):
            return _Delivered(outcome.route, outcome.message_id, note=reason)
        return outcome

    async def _send_channel(
        self, item: ClaimedItem, channel_id: str, route: DeliveryRoute
    ) -> _Outcome:
        if not await self.outbox.mark_route(item, self.relay_id, route):
            return _Retry("lease lost before sending")
        deadline = self._deadline(item.lease_until)
        try:
            message = await send_channel(self._rest, channel_id, item, deadline=deadline)
        except Exception as exc:
            if is_retryable(exc):
                return _Retry(f"{type(exc).__name__}: {exc}")
            if isinstance(exc, DiscordHTTPError):
                return _Dead(f"{route} {_reason(exc)}")
            raise
        return _Delivered(route, message.id)

    # --- in doubt ------------------------------------------------------------------------

    async def _resolve_in_doubt(self, item: ClaimedItem, *, token_alive: bool) -> _Outcome | None:
        """An earlier attempt may have reached Discord. Settle the item when we can tell
        it did (or must give up); otherwise return None: sending again is safe, or the
        only way forward (counted as ``redelivered``)."""
        previous = item.previous_route
        if previous is None:
            self._resolve(item, "claimed, never sent")
            return None
        if previous is not DeliveryRoute.TOKEN:
            since = self._clock.time() - (item.previous_claimed_at or 0.0)
            if since <= self.settings.nonce_window:
                self._resolve(item, "nonce redo")
            else:
                self._resolve(item, "redelivered past the nonce window")
                self._counts["redelivered"] += 1
            return None
        if item.kind is DeliveryKind.EDIT_ORIGINAL and token_alive:
            self._resolve(item, "idempotent redo")
            return None
        if not item.ephemeral and item.channel_id and item.payload.get("content"):
            try:
                found = await find_in_channel(self._rest, item, limit=self.settings.lookup_limit)
            except Exception as exc:
                log.warning("outbox item %s: in-doubt look-up failed: %s", item.id, exc)
                if is_retryable(exc):
                    return _Retry(f"in-doubt look-up failed: {exc}")
            else:
                if found is not None:
                    self._resolve(item, "found in channel")
                    return _Delivered(DeliveryRoute.TOKEN, found.id)
                self._resolve(item, "not found in channel")
                return None
        # Ephemeral, or unreadable: Discord gives no means to check.
        if self.settings.ephemeral_in_doubt == "dead_letter":
            self._resolve(item, "dead-lettered unchecked")
            return _Dead("in doubt: no way to check")
        self._resolve(item, "redelivered unchecked")
        self._counts["redelivered"] += 1
        return None

    def _resolve(self, item: ClaimedItem, how: str) -> None:
        self._resolved[how] += 1
        self._resolutions[item.id] = how
        log.info("outbox item %s was in doubt: %s", item.id, how)

    def _resolution_of(self, item: ClaimedItem) -> str | None:
        return self._resolutions.pop(item.id, None)

    # --- reporting -----------------------------------------------------------------------

    async def _refresh_backlog(self, *, force: bool = False) -> None:
        now = self._clock.monotonic()
        if not force and self._backlog_at is not None and now - self._backlog_at < _BACKLOG_EVERY:
            return
        self._backlog_at = now
        self._backlog = await self.outbox.backlog()

    def statistics(self) -> OutboxStatistics:
        pending, sending, oldest = self._backlog
        counts = self._counts
        return OutboxStatistics(
            pending=pending,
            sending=sending,
            oldest_pending_age=0.0 if oldest is None else max(0.0, self._clock.time() - oldest),
            enqueued=self.outbox.enqueued,
            duplicates=self.outbox.duplicates,
            delivered=counts["delivered"],
            delivered_via=dict(self._via),
            retried=counts["retried"],
            dead_lettered=counts["dead_lettered"],
            dead_by_reason=dict(self._dead_by_reason),
            in_doubt_found=counts["in_doubt_found"],
            in_doubt_resolved=dict(self._resolved),
            redelivered=counts["redelivered"],
            lost_leases=counts["lost_leases"],
            polls=counts["polls"],
        )

    def health_check(self) -> tuple[Status, str] | None:
        """A warning when the oldest pending item waited longer than the setting."""
        stats = self.statistics()
        if stats.oldest_pending_age > self.settings.pending_age_warning:
            return (
                "warning",
                f"outbox: oldest pending item waited {stats.oldest_pending_age:.0f}s "
                f"({stats.pending} pending)",
            )
        if not self.running and self._task is not None:
            return ("warning", "outbox relay stopped")
        return None

    def collect(self) -> Iterator[Metric]:
        """Prometheus metric families (register with ``bot.metrics.register``)."""
        stats = self.statistics()
        backlog = GaugeMetricFamily(
            "steadybot_outbox_items", "Outbox items by state, at the last look.", labels=["state"]
        )
        backlog.add_metric(["pending"], stats.pending)
        backlog.add_metric(["sending"], stats.sending)
        yield backlog
        yield GaugeMetricFamily(
            "steadybot_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox item.",
            value=stats.oldest_pending_age,
        )
        delivered = CounterMetricFamily(
            "steadybot_outbox_delivered", "Items delivered, by route.", labels=["via"]
        )
        for via, count in sorted(stats.delivered_via.items()):
            delivered.add_metric([via], count)
        yield delivered
        dead = CounterMetricFamily(
            "steadybot_outbox_dead_lettered", "Items given up, by reason.", labels=["reason"]
        )
        for reason, count in sorted(stats.dead_by_reason.items()):
            dead.add_metric([reason], count)
        yield dead
        doubt = CounterMetricFamily(
            "steadybot_outbox_in_doubt_resolved",
            "In-doubt items found after a crash, by how they were resolved.",
            labels=["how"],
        )
        for how, count in sorted(stats.in_doubt_resolved.items()):
            doubt.add_metric([how], count)
        yield doubt
        yield CounterMetricFamily(
            "steadybot_outbox_retried", "Failed attempts scheduled again.", value=stats.retried
        )
        yield CounterMetricFamily(
            "steadybot_outbox_redelivered",
            "In-doubt items sent again with no way to check (may show twice).",
            value=stats.redelivered,
        )
