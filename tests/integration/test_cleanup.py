"""The cleanup helper against the emulator's bulk-delete rules and buckets, over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import drive

from steadybot.clock import ManualClock
from steadybot.emulator import Emulator
from steadybot.rest import MessageCleaner, RestClient
from steadybot.rest.buckets import BucketManager

DAY = 24 * 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def emulator(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=clock, members=5) as emulator:
        yield emulator


@pytest.fixture
async def rest(emulator: Emulator, clock: ManualClock) -> AsyncIterator[RestClient]:
    client = RestClient(
        api_base=emulator.api_base,
        token=emulator.bot_token,
        clock=clock,
        rate_limiter=BucketManager(clock=clock),
    )
    yield client
    await client.close()


async def test_guild_channel_bulk_deletes_the_young_and_singles_the_old(
    emulator: Emulator, rest: RestClient, clock: ManualClock
) -> None:
    channel = emulator.channel_ids[0]
    young = [(await emulator.post_message(channel, {"content": "y"}))["id"] for _ in range(150)]
    old = [
        (await emulator.post_message(channel, {"content": "o"}, age=15 * DAY))["id"]
        for _ in range(12)
    ]
    # Just inside 14 days: too close to the line to risk a batch on it.
    edge = (await emulator.post_message(channel, {"content": "e"}, age=14 * DAY - 60))["id"]
    kept = (await emulator.post_message(channel, {"content": "keep me"}))["id"]
    gone = (await emulator.post_message(channel, {"content": "gone"}, age=20 * DAY))["id"]
    await rest.delete_message(channel, gone)

    cleaner = MessageCleaner(rest, clock=clock)
    ids = [*young, *old, edge, gone, "not-an-id", young[0]]
    report = await drive(clock, cleaner.delete(channel, ids))

    assert sorted(report.deleted) == sorted([*young, *old, edge])
    assert report.gone == [gone]
    assert report.failed == {"not-an-id": "not a message id"}
    assert report.bulk_requests == 2  # 100 + 50
    assert report.single_requests == len(old) + 2  # the old, the edge one, the gone one
    assert [m["id"] for m in emulator.messages(channel)] == [kept]
    stats = rest.statistics()
    assert 429 not in stats.by_status
    assert 400 not in stats.by_status  # the 14-day rule was never broken
    # 14 single deletes at 5 per second: the last of them leaves about 2 s in.
    assert 2.0 <= report.elapsed <= 3.0


async def test_direct_messages_are_deleted_one_by_one(
    emulator: Emulator, rest: RestClient, clock: ManualClock
) -> None:
    dm = emulator.open_dm(emulator.user_ids[0])
    ids = [(await emulator.post_message(dm, {"content": str(n)}))["id"] for n in range(11)]
    report = await drive(clock, MessageCleaner(rest, clock=clock).delete(dm, ids))
    assert sorted(report.deleted) == sorted(ids)
    assert (report.bulk_requests, report.single_requests) == (0, 11)
    assert emulator.messages(dm) == []
    assert 429 not in rest.statistics().by_status


async def test_a_refused_bulk_delete_falls_back_to_single_deletes(
    emulator: Emulator, rest: RestClient, clock: ManualClock
) -> None:
    channel = emulator.channel_ids[1]
    ids = [
        (await emulator.post_message(channel, {"content": "x"}, age=20 * DAY))["id"]
        for _ in range(5)
    ]
    # The cleaner's clock is 30 days behind: it thinks these are young; Discord does not.
    late = ManualClock(wall_offset=clock.time() - clock.monotonic() - 30 * DAY)
    cleaner = MessageCleaner(rest, clock=late)
    report = await drive(clock, cleaner.delete(channel, ids, dm=False))
    assert sorted(report.deleted) == sorted(ids)
    assert (report.bulk_requests, report.single_requests) == (1, 5)
    assert emulator.messages(channel) == []
    assert rest.statistics().by_status.get(400) == 1  # the one 50034, then no more


async def test_unknown_channel_fails_every_id_with_the_reason(
    rest: RestClient, clock: ManualClock
) -> None:
    report = await drive(clock, MessageCleaner(rest, clock=clock).delete("1234", ["5", "6"]))
    assert set(report.failed) == {"5", "6"}
    assert "10003" in report.failed["5"]
    assert not report.ok


async def test_any_failure_of_a_request_is_reported_and_never_hangs_the_cleanup(
    emulator: Emulator, rest: RestClient, clock: ManualClock
) -> None:
    channel = emulator.channel_ids[0]
    ids = [(await emulator.post_message(channel, {"content": "m"}))["id"] for _ in range(5)]
    old = (await emulator.post_message(channel, {"content": "o"}, age=15 * DAY))["id"]

    async def store_down(*_: object, **__: object) -> None:
        raise ConnectionError("shared rate-limit store unreachable")

    # Neither a Discord answer nor a transport error: e.g. the Redis slot store failing.
    rest.bulk_delete_messages = store_down  # type: ignore[method-assign]
    rest.delete_message = store_down  # type: ignore[method-assign]
    report = await asyncio.wait_for(
        MessageCleaner(rest, clock=clock).delete(channel, [*ids, old]), 5
    )
    assert report.deleted == []
    assert report.failed == dict.fromkeys([*ids, old], "shared rate-limit store unreachable")
