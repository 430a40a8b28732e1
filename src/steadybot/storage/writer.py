"""Write-behind batching for high-volume rows (action logs, audit trails, counters).

A handler that writes one row per click pays one transaction per click; at a few
hundred clicks a second that is the database's whole budget (and the story of the bot
that rewrote a 178 KB JSON file on every click). :class:`BatchedWriter` takes rows in
memory with :meth:`BatchedWriter.add`, which never awaits, and writes them with one
``executemany`` per batch:

- **on size**: as soon as ``max_rows`` rows wait;
- **on time**: ``max_delay`` seconds (on the injected clock) after the first row of a
  batch arrived, so a quiet log is still written promptly;
- **at close**: :meth:`BatchedWriter.close` writes whatever is left.

A failed batch is put back in front of the buffer, in order, and retried after a
backoff that doubles from ``max_delay`` up to ``retry_cap``. The buffer is bounded by
``max_buffer``: when the database stays down long enough to fill it, the **oldest** rows
are dropped (counted in ``statistics().dropped`` and logged), never the caller's
request — losing log lines beats failing the interaction that produced them. Rows are
not durable until flushed: a crash loses the buffer. Use a transaction, not this
writer, for anything that must not be lost (credits, outbox).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steadybot.clock import Clock, Timer
from steadybot.resilience.retry import backoff_ceiling
from steadybot.storage.database import Database
from steadybot.storage.errors import StorageError

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["BatchedWriter", "WriterClosed", "WriterStatistics"]

log = logging.getLogger("steadybot.storage.writer")


class WriterClosed(StorageError):
    """A row was added to a :class:`BatchedWriter` after :meth:`~BatchedWriter.close`."""


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    """What a :class:`BatchedWriter` holds and has done."""

    buffered: int  # rows waiting (including a batch being written)
    max_buffer: int
    added: int
    written: int
    flushes: int  # successful batches
    failures: int  # failed batches (each retried)
    dropped: int  # rows lost: buffer full, or the last flush at close failed
    consecutive_failures: int


class BatchedWriter:
    """Buffer rows for ``sql`` (an INSERT with ``$1..$n``) and write them in batches."""

    def __init__(
        self,
        database: Database,
        sql: str,
        *,
        max_rows: int = 500,
        max_delay: float = 1.0,
        max_buffer: int = 50_000,
        retry_cap: float = 30.0,
        clock: Clock | None = None,
        name: str = "",
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if max_buffer < max_rows:
            raise ValueError(f"max_buffer ({max_buffer}) must be >= max_rows ({max_rows})")
        if not (max_delay > 0 and math.isfinite(max_delay)):
            raise ValueError(f"max_delay must be a positive number of seconds: {max_delay}")
        self._database = database
        self._sql = sql
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._max_buffer = max_buffer
        self._retry_cap = max(retry_cap, max_delay)
        self._clock = clock or database.clock
        self._name = name or sql.split("(", 1)[0].strip()[:60]
        self._buffer: collections.deque[tuple[object, ...]] = collections.deque()
        self._timer: Timer | None = None
        self._wake: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._added = 0
        self._written = 0
        self._flushes = 0
        self._failures = 0
        self._dropped = 0
        self._consecutive_failures = 0

    @classmethod
    def from_settings(
        cls, database: Database, sql: str, settings: Settings, *, clock: Clock | None = None
    ) -> BatchedWriter:
        """A writer with the ``STEADYBOT_WRITER_*`` limits."""
        return cls(
            database,
            sql,
            max_rows=settings.writer_max_rows,
            max_delay=settings.writer_max_delay,
            max_buffer=settings.writer_max_buffer,
            retry_cap=settings.writer_retry_cap,
            clock=clock,
        )

    def add(self, row: Sequence[object]) -> None:
        """Queue one row; never waits. Drops the oldest row when the buffer is full."""
        if self._closed:
            raise WriterClosed(f"writer {self._name!r} is closed")
        if len(self._buffer) >= self._max_buffer:
            self._buffer.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning(
                    "batched writer %s is full (%d rows): dropped %d oldest rows so far",
                    self._name,
                    self._max_buffer,
                    self._dropped,
                )
        self._buffer.append(tuple(row))
        self._added += 1
        if self._consecutive_failures:
            return  # the database is failing: the retry timer decides, not the size
        if len(self._buffer) >= self._max_rows:
            self._signal()
        elif self._timer is None:
            self._arm(self._max_delay)

    async def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._closed:
            raise WriterClosed(f"writer {self._name!r} is closed")
        if self._task is None:
            self._ensure_primitives()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"steadybot-writer-{self._name}"
            )
            if len(self._buffer) >= self._max_rows:
                self._signal()

    async def flush(self) -> int:
        """Write every buffered row now; returns how many were written.

        Raises the :class:`StorageError` of a failed batch (its rows stay buffered).
        """
        self._ensure_primitives()
        assert self._flush_lock is not None
        written = 0
        async with self._flush_lock:
            while self._buffer:
                written += await self._write_batch()
        return written

    async def close(self) -> None:
        """Stop the flusher and write what is left. If that last write fails, the rows
        are counted as dropped and the error is raised."""
        if self._closed:
            return
        self._closed = True
        self._disarm()
        if self._task is not None:
            assert self._flush_lock is not None  # made by start()
            # A batch being written has left the buffer: cancelling its write would
            # lose it, so let it end first (the flusher writes under this lock).
            async with self._flush_lock:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except StorageError:
            self._dropped += len(self._buffer)
            log.error(
                "batched writer %s: the final flush failed; %d rows lost",
                self._name,
                len(self._buffer),
            )
            self._buffer.clear()
            raise

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            buffered=len(self._buffer),
            max_buffer=self._max_buffer,
            added=self._added,
            written=self._written,
            flushes=self._flushes,
            failures=self._failures,
            dropped=self._dropped,
            consecutive_failures=self._consecutive_failures,
        )

    # --- inside ------------------------------------------------------------------------
    def _ensure_primitives(self) -> None:
        # Made inside the running loop, not in __init__.
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()

    def _signal(self) -> None:
        self._disarm()
        if self._wake is not None:
            self._wake.set()

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._timer = self._clock.call_later(delay, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        assert self._flush_lock is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._flush_lock:
                try:
                    # Full batches go at once; a partial one only when its time came.
                    while self._buffer:
                        await self._write_batch()
                        if len(self._buffer) < self._max_rows:
                            break
                except StorageError as exc:
                    delay = backoff_ceiling(
                        self._consecutive_failures - 1, base=self._max_delay, cap=self._retry_cap
                    )
                    log.warning(
                        "batched writer %s: a batch failed (%s: %s); %d rows kept, retry in %.2fs",
                        self._name,
                        type(exc).__name__,
                        exc,
                        len(self._buffer),
                        delay,
                    )
                    self._arm(delay)
                    continue
            if self._buffer:
                self._arm(self._max_delay)

    async def _write_batch(self) -> int:
        count = min(self._max_rows, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(count)]
        try:
            await self._database.executemany(self._sql, batch)
        except StorageError:
            self._failures += 1
            self._consecutive_failures += 1
            # Back in front, in order; beyond the cap the oldest rows go.
            room = self._max_buffer - len(self._buffer)
            if room < len(batch):
                self._dropped += len(batch) - room
                batch = batch[len(batch) - room :] if room > 0 else []
            self._buffer.extendleft(reversed(batch))
            raise
        self._written += count
        self._flushes += 1
        self._consecutive_failures = 0
        return count
