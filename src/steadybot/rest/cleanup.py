"""Deleting many messages: bulk where Discord allows it, one by one where it does not.

Discord's rules (facts file, "Messages and channels"): bulk delete takes 2-100 unique
ids of messages under 14 days old, in guild channels only; DMs and older messages are
deleted one by one. A message's age is read off its id (a snowflake), so nothing is
fetched. Messages within ``age_margin`` of the 14-day line go one by one, so clock skew
cannot turn a batch into a 400.

No sleeps: every request goes through the client's rate limiter, which paces bulk
deletes (about one per second per channel) and single deletes (about five per second
per channel) by the buckets Discord reports. Single deletes run ``concurrency`` at a
time so the bucket, not a loop, sets the pace; bulk batches run alongside them, since
the two are separate buckets.

The result says what happened to every id: deleted, already gone (404 Unknown
Message), or failed with a reason. A bulk batch Discord refuses (too old after all,
or 403 without Manage Messages) falls back to single deletes, which still work for
the bot's own messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from steadybot.clock import Clock
from steadybot.constants import ErrorCode
from steadybot.errors import DiscordHTTPError, Forbidden, TransportError
from steadybot.rest.client import RestClient
from steadybot.snowflake import snowflake_time

__all__ = ["BULK_DELETE_MAX", "BULK_DELETE_MAX_AGE", "CleanupReport", "MessageCleaner"]

log = logging.getLogger("steadybot.rest.cleanup")

BULK_DELETE_MIN = 2
BULK_DELETE_MAX = 100
BULK_DELETE_MAX_AGE = 14 * 24 * 3600.0
DM_CHANNEL_TYPES = frozenset({1, 3})  # DM, group DM


@dataclass
class CleanupReport:
    """What happened to every message id handed to :meth:`MessageCleaner.delete`."""

    channel_id: str
    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # already deleted: 404 Unknown Message
    failed: dict[str, str] = field(default_factory=dict)  # id → reason
    bulk_requests: int = 0
    single_requests: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


class MessageCleaner:
    """Deletes many messages of one channel as fast as the buckets allow."""

    def __init__(
        self,
        rest: RestClient,
        *,
        clock: Clock,
        concurrency: int = 8,
        age_margin: float = 600.0,
        reason: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._rest = rest
        self._clock = clock
        self._concurrency = concurrency
        self._age_margin = age_margin
        self._reason = reason

    async def delete(
        self, channel_id: str, message_ids: Iterable[str], *, dm: bool | None = None
    ) -> CleanupReport:
        """Delete ``message_ids`` from ``channel_id``; ``dm`` None: ask Discord the type."""
        started = self._clock.monotonic()
        report = CleanupReport(channel_id)
        ids = self._valid_unique(message_ids, report)
        if dm is None and ids:
            try:
                dm = (await self._rest.get_channel(channel_id)).type in DM_CHANNEL_TYPES
            except (DiscordHTTPError, TransportError) as exc:
                for message_id in ids:
                    report.failed[message_id] = f"channel lookup failed: {_reason(exc)}"
                ids = []
        batches, singles = ([], ids) if dm else self._split(ids)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for message_id in singles:
            queue.put_nowait(message_id)
        workers = [
            asyncio.ensure_future(self._single_worker(channel_id, queue, report))
            for _ in range(min(self._concurrency, max(1, len(ids))))
        ]
        try:
            for batch in batches:
                await self._bulk(channel_id, batch, queue, report)
            await queue.join()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        report.elapsed = self._clock.monotonic() - started
        log.info(
            "cleanup of channel %s: %d deleted, %d already gone, %d failed "
            "(%d bulk + %d single requests, %.1fs)",
            channel_id,
            len(report.deleted),
            len(report.gone),
            len(report.failed),
            report.bulk_requests,
            report.single_requests,
            report.elapsed,
        )
        return report

    @staticmethod
    def _valid_unique(message_ids: Iterable[str], report: CleanupReport) -> list[str]:
        seen: set[str] = set()
        ids: list[str] = []
        for message_id in message_ids:
            text = str(message_id)
            if not text.isdigit():
                report.failed[text] = "not a message id"
            elif text not in seen:
                seen.add(text)
                ids.append(text)
        return ids

    def _split(self, ids: Sequence[str]) -> tuple[list[list[str]], list[str]]:
        """Bulk batches of young messages, and the ids to delete one by one."""
        oldest = self._clock.time() - (BULK_DELETE_MAX_AGE - self._age_margin)
        young = [i for i in ids if snowflake_time(i) > oldest]
        singles = [i for i in ids if snowflake_time(i) <= oldest]
        batches = [young[n : n + BULK_DELETE_MAX] for n in range(0, len(young), BULK_DELETE_MAX)]
        if batches and len(batches[-1]) < BULK_DELETE_MIN:
            singles += batches.pop()
        return batches, singles

    async def _bulk(
        self,
        channel_id: str,
        batch: list[str],
        queue: asyncio.Queue[str],
        report: CleanupReport,
    ) -> None:
        report.bulk_requests += 1
        try:
            await self._rest.bulk_delete_messages(channel_id, batch, reason=self._reason)
        except DiscordHTTPError as exc:
            too_old = exc.code == ErrorCode.MESSAGE_TOO_OLD_TO_BULK_DELETE
            if too_old or isinstance(exc, Forbidden):
                log.info("bulk delete refused (%s); deleting one by one", exc.message)
                for message_id in batch:
                    queue.put_nowait(message_id)
                return
            for message_id in batch:
                report.failed[message_id] = _reason(exc)
        except Exception as exc:
            for message_id in batch:
                report.failed[message_id] = _reason(exc)
        else:
            report.deleted += batch

    async def _single_worker(
        self, channel_id: str, queue: asyncio.Queue[str], report: CleanupReport
    ) -> None:
        while True:
            message_id = await queue.get()
            try:
                report.single_requests += 1
                await self._rest.delete_message(channel_id, message_id)
            except DiscordHTTPError as exc:
                if exc.code == ErrorCode.UNKNOWN_MESSAGE:
                    report.gone.append(message_id)
                else:
                    report.failed[message_id] = _reason(exc)
            except Exception as exc:
                report.failed[message_id] = _reason(exc)
            else:
                report.deleted.append(message_id)
            finally:
                queue.task_done()


def _reason(exc: Exception) -> str:
    if isinstance(exc, DiscordHTTPError):
        return f"HTTP {exc.status}, code {exc.code}: {exc.message}"
    return str(exc)
