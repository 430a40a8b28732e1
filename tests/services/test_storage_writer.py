"""BatchedWriter on both backends: flush on size, on time (manual clock), at close,
failure then recovery, and the bounded buffer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from steadybot.clock import ManualClock
from steadybot.storage import Database, Migration
from steadybot.storage.writer import BatchedWriter, WriterClosed

pytestmark = pytest.mark.services

LOG = Migration(1, "action log", "CREATE TABLE action_log (n BIGINT NOT NULL, what TEXT)")
INSERT = "INSERT INTO action_log (n, what) VALUES ($1, $2)"


def manual(database: Database) -> ManualClock:
    clock = database.clock
    assert isinstance(clock, ManualClock)
    return clock


async def settled(check: Callable[[], bool]) -> None:
    """Wait (real time, bounded) until the writer's database I/O made ``check`` true."""
    for _ in range(2500):  # at most ~5 s
        if check():
            return
        await asyncio.sleep(0.002)
    pytest.fail("the writer did not get there in 5 s")


async def logged(database: Database) -> list[int]:
    return [r["n"] for r in await database.fetch("SELECT n FROM action_log ORDER BY n")]


async def test_flushes_when_a_batch_is_full(database: Database) -> None:
    await database.migrate([LOG])
    writer = BatchedWriter(database, INSERT, max_rows=10, max_delay=60.0)
    await writer.start()
    try:
        for n in range(25):
            writer.add((n, "click"))
        await settled(lambda: writer.statistics().flushes == 2)  # no time passed: size did it
        assert await logged(database) == list(range(20))
        assert writer.statistics().buffered == 5
        assert writer.statistics().flushes == 2
    finally:
        await writer.close()
    assert await logged(database) == list(range(25))  # the rest at close


async def test_flushes_a_partial_batch_after_max_delay(database: Database) -> None:
    await database.migrate([LOG])
    clock = manual(database)
    writer = BatchedWriter(database, INSERT, max_rows=100, max_delay=2.0)
    await writer.start()
    try:
        writer.add((1, "a"))
        await clock.advance(1.0)
        writer.add((2, "b"))
        await clock.advance(0.5)
        assert await logged(database) == []
        await clock.advance(0.6)  # 2.1 s after the first row
        await settled(lambda: writer.statistics().written == 2)
        assert await logged(database) == [1, 2]
        writer.add((3, "c"))
        await clock.advance(1.9)
        assert await logged(database) == [1, 2]
        await clock.advance(0.2)
        await settled(lambda: writer.statistics().written == 3)
        assert await logged(database) == [1, 2, 3]
    finally:
        await writer.close()


async def test_close_writes_what_is_left_and_refuses_more(database: Database) -> None:
    await database.migrate([LOG])
    writer = BatchedWriter(database, INSERT, max_rows=100, max_delay=60.0)
    await writer.start()
    for n in range(7):
        writer.add((n, None))
    assert await logged(database) == []
    await writer.close()
    assert await logged(database) == list(range(7))
    assert writer.statistics().written == 7
    with pytest.raises(WriterClosed):
        writer.add((8, None))


async def test_a_failed_batch_is_kept_in_order_and_retried(database: Database) -> None:
    clock = manual(database)
    # No table yet: every batch fails until the migration runs.
    writer = BatchedWriter(database, INSERT, max_rows=3, max_delay=1.0, retry_cap=4.0)
    await writer.start()
    try:
        for n in range(5):
            writer.add((n, "x"))
        await settled(lambda: writer.statistics().failures == 1)
        stats = writer.statistics()
        assert stats.buffered == 5
        for n in range(5, 8):
            writer.add((n, "x"))  # the size no longer triggers while failing
        await clock.advance(0)
        assert writer.statistics().failures == 1
        await clock.advance(1.0)  # first retry after max_delay: fails again
        await settled(lambda: writer.statistics().failures == 2)
        await database.migrate([LOG])
        await clock.advance(1.9)  # the second retry waits 2 s
        assert await logged(database) == []
        await clock.advance(0.2)
        # The retry writes the full batches; the partial rest waits max_delay as usual.
        await settled(lambda: writer.statistics().written == 6)
        await clock.advance(1.0)
        await settled(lambda: writer.statistics().written == 8)
        assert await logged(database) == list(range(8))  # nothing lost, in order
        stats = writer.statistics()
        assert stats.consecutive_failures == 0
        assert stats.dropped == 0
        assert stats.written == 8
    finally:
        await writer.close()


async def test_a_full_buffer_drops_the_oldest_rows(database: Database) -> None:
    writer = BatchedWriter(database, INSERT, max_rows=2, max_delay=1.0, max_buffer=4)
    for n in range(6):  # not started: nothing flushes
        writer.add((n, "x"))
    stats = writer.statistics()
    assert stats.buffered == 4
    assert stats.dropped == 2
    await database.migrate([LOG])
    await writer.close()
    assert await logged(database) == [2, 3, 4, 5]


async def test_a_failing_final_flush_raises_and_counts_the_loss(database: Database) -> None:
    writer = BatchedWriter(database, INSERT, max_rows=10, max_delay=1.0)
    writer.add((1, "x"))
    with pytest.raises(Exception, match="action_log"):
        await writer.close()
    assert writer.statistics().dropped == 1


def test_bad_limits_are_refused(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        BatchedWriter(None, INSERT, max_rows=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer"):
        BatchedWriter(None, INSERT, max_rows=10, max_buffer=5)  # type: ignore[arg-type]


async def test_close_keeps_the_rows_of_a_batch_being_written(database: Database) -> None:
    # A batch leaves the buffer when its write starts: cancelling that write at close
    # must not lose it.
    await database.migrate([LOG])
    writer = BatchedWriter(database, INSERT, max_rows=5, max_delay=60.0)
    await writer.start()
    closing: asyncio.Future[None] | None = None
    async with database.transaction() as conn:
        if conn.dialect == "postgresql":
            await conn.execute("LOCK TABLE action_log IN EXCLUSIVE MODE")
        # (SQLite: this open transaction already holds the one connection.)
        for n in range(5):
            writer.add((n, "click"))
        await settled(lambda: writer.statistics().buffered == 5)
        for _ in range(20):  # let the flusher take the batch and block on our lock
            await asyncio.sleep(0.005)
        closing = asyncio.ensure_future(writer.close())
        for _ in range(20):
            await asyncio.sleep(0.005)
    await closing
    assert await logged(database) == list(range(5))
    assert writer.statistics().dropped == 0
