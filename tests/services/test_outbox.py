"""The outbox on SQLite and PostgreSQL, delivering to the emulator over sockets.

A real bot serves the emulator's interactions; its handler records its answer in the
outbox inside a database transaction; a relay on the same ManualClock delivers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from steadybot import Bot
from steadybot.clock import ManualClock
from steadybot.config import Settings
from steadybot.emulator import Emulator
from steadybot.emulator.faults import FaultRule
from steadybot.emulator.interactions import EmulatedInteraction
from steadybot.emulator.ratelimits import RateLimitSettings
from steadybot.interactions.context import Interaction
from steadybot.outbox import (
    DeliveryKind,
    DeliveryRoute,
    IllegalOutboxTransition,
    Outbox,
    OutboxItem,
    OutboxRelay,
    OutboxSettings,
    OutboxState,
)
from steadybot.serving import InProcessServer, serve_in_process
from steadybot.storage import Connection, Database, open_database

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


class Boom(Exception):
    pass


@dataclass
class Setup:
    emulator: Emulator
    bot: Bot
    outbox: Outbox
    relay: OutboxRelay
    clock: ManualClock
    database: Database
    served: InProcessServer
    rollback: bool = False
    ephemeral: bool = False
    kind: DeliveryKind = DeliveryKind.EDIT_ORIGINAL

    async def command(self) -> EmulatedInteraction:
        interaction = await self.emulator.send_command("buy")
        assert interaction.ack_type == 5, interaction.delivery_error
        for _ in range(100):  # the handler's transaction ends after the HTTP reply
            if self.bot.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        return interaction


def bot_settings(emulator: Emulator) -> Settings:
    return Settings(
        application_id=emulator.application_id,
        public_key=emulator.public_key,
        token=emulator.bot_token,  # type: ignore[arg-type]
        api_base=emulator.api_base,
        watchdog_enabled=False,
        rest_max_attempts=1,  # the relay's own retries are under test
    )


@pytest.fixture
async def setup(database: Database) -> AsyncIterator[Setup]:
    clock = database.clock
    assert isinstance(clock, ManualClock)
    async with Emulator(clock=clock, members=5) as emulator:
        bot = Bot(bot_settings(emulator), clock=clock)
        outbox = Outbox(database, settings=OutboxSettings(lease=30.0))
        await outbox.migrate()
        relay = OutboxRelay(outbox, bot.rest, rng=random.Random(7))
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        state = Setup(emulator, bot, outbox, relay, clock, database, served)

        @bot.command("buy", defer="now", ephemeral=False)
        async def buy(interaction: Interaction) -> None:
            interaction.responder.ephemeral_default = state.ephemeral
            async with database.transaction() as conn:
                if state.kind is DeliveryKind.EDIT_ORIGINAL:
                    await outbox.edit_original(conn, interaction, f"answer {interaction.id}")
                else:
                    await outbox.followup(
                        conn, interaction, f"answer {interaction.id}", key=f"f:{interaction.id}"
                    )
                if state.rollback:
                    raise Boom

        try:
            yield state
        finally:
            await relay.close()
            await served.stop()
            await bot.close()


def original(setup: Setup, interaction: EmulatedInteraction) -> dict[str, object]:
    message = setup.emulator.ledger.webhook_message(interaction, "@original")
    return message


async def test_a_rolled_back_transaction_delivers_nothing(setup: Setup) -> None:
    setup.rollback = True
    interaction = await setup.command()
    assert await setup.relay.drain() == 0
    assert await setup.outbox.records() == []
    # The runtime's error message, not the answer that was rolled back.
    assert original(setup, interaction)["content"] == setup.bot.settings.error_message


async def test_a_committed_answer_is_delivered_once(setup: Setup) -> None:
    interaction = await setup.command()
    assert await setup.relay.drain() == 1
    message = original(setup, interaction)
    assert message["content"] == f"answer {interaction.id}"
    assert setup.emulator.world.edits[str(message["id"])] == 1  # no done message, no redo
    assert interaction.followup_ids == []
    (record,) = await setup.outbox.records()
    assert record.state is OutboxState.DELIVERED
    assert record.delivered_via is DeliveryRoute.TOKEN
    assert record.message_id == message["id"]
    token = await setup.database.fetchval("SELECT token FROM outbox_items WHERE id = $1", record.id)
    assert token is None  # the secret is erased once delivered
    assert await setup.relay.drain() == 0
    stats = setup.relay.statistics()
    assert (stats.delivered, stats.pending, stats.retried) == (1, 0, 0)


async def test_enqueuing_one_key_twice_is_a_no_op(setup: Setup) -> None:
    item = OutboxItem(
        key="k1", kind=DeliveryKind.CHANNEL_MESSAGE, payload={"content": "hi"}, channel_id="1"
    )
    async with setup.database.transaction() as conn:
        assert await setup.outbox.enqueue(conn, item) is True
        assert await setup.outbox.enqueue(conn, item) is False
    assert len(await setup.outbox.records()) == 1
    assert (setup.outbox.enqueued, setup.outbox.duplicates) == (1, 1)


async def test_webhook_faults_are_retried_with_backoff_until_delivered(setup: Setup) -> None:
    setup.emulator.faults.set_rules(
        [FaultRule(route="/webhooks/*", method="PATCH", status=500, count=3)]
    )
    interaction = await setup.command()
    for _ in range(3):
        assert await setup.relay.run_once() == 1  # fails: rescheduled with a backoff
        assert await setup.relay.run_once() == 0  # not due yet
        await setup.clock.advance(60.0)
    assert await setup.relay.run_once() == 1
    assert original(setup, interaction)["content"] == f"answer {interaction.id}"
    (record,) = await setup.outbox.records()
    assert (record.state, record.attempts) == (OutboxState.DELIVERED, 4)
    assert setup.relay.statistics().retried == 3


async def test_an_expired_token_falls_back_to_the_channel(setup: Setup) -> None:
    setup.emulator.faults.set_rules([FaultRule(route="/webhooks/*", method="PATCH", status=503)])
    interaction = await setup.command()
    await setup.relay.run_once()
    setup.emulator.faults.set_rules([])
    await setup.clock.advance(15 * 60.0)  # past the token's life
    assert await setup.relay.drain() == 1
    (record,) = await setup.outbox.records()
    assert record.state is OutboxState.DELIVERED
    assert record.delivered_via is DeliveryRoute.CHANNEL
    assert record.last_error == "token expired"
    channel = setup.emulator.messages(interaction.channel_id)
    assert [m["content"] for m in channel].count(f"answer {interaction.id}") == 1


async def test_an_expired_token_without_fallback_is_dead_lettered(setup: Setup) -> None:
    setup.relay.settings = OutboxSettings(fallback_to_channel=False)
    setup.emulator.faults.set_rules([FaultRule(route="/webhooks/*", method="PATCH", status=503)])
    await setup.command()
    await setup.relay.run_once()
    await setup.clock.advance(15 * 60.0)
    await setup.relay.drain()
    (record,) = await setup.outbox.records()
    assert (record.state, record.dead_reason) == (OutboxState.DEAD, "token expired")
    assert setup.relay.statistics().dead_by_reason == {"token expired": 1}
    # Dead only after expiry: the item's expiry had passed when it was given up.
    assert record.expires_at is not None
    assert setup.clock.time() >= record.expires_at


async def test_a_4xx_is_dead_lettered_with_its_code(setup: Setup) -> None:
    setup.emulator.faults.set_rules(
        [FaultRule(route="/webhooks/*", method="PATCH", status=400, code=50035)]
    )
    await setup.command()
    await setup.relay.drain()
    (record,) = await setup.outbox.records()
    assert (record.state, record.dead_reason) == (OutboxState.DEAD, "4xx 400 50035")


async def crash_after_send(setup: Setup) -> None:
    """A relay claims and sends, then 'crashes' before recording the result."""
    items = await setup.outbox.claim("crashed-relay", limit=10)
    assert items
    crashed = OutboxRelay(setup.outbox, setup.bot.rest, relay_id="crashed-relay")

    async def never_finish(*args: object, **kwargs: object) -> None:
        raise asyncio.CancelledError  # the process dies here, whatever the answer was

    crashed._finish = never_finish  # type: ignore[method-assign]
    for item in items:
        with pytest.raises(asyncio.CancelledError):
            await crashed._deliver(item)


async def test_an_in_doubt_edit_is_redone_and_shows_once(setup: Setup) -> None:
    interaction = await setup.command()
    await crash_after_send(setup)
    assert original(setup, interaction)["content"] == f"answer {interaction.id}"
    assert await setup.relay.run_once() == 0  # the crashed relay's lease holds
    await setup.clock.advance(31.0)
    assert await setup.relay.run_once() == 1
    (record,) = await setup.outbox.records()
    assert (record.state, record.in_doubt, record.resolution) == (
        OutboxState.DELIVERED,
        1,
        "idempotent redo",
    )
    assert interaction.followup_ids == []
    stats = setup.relay.statistics()
    assert (stats.in_doubt_found, stats.redelivered) == (1, 0)


async def test_an_in_doubt_public_followup_is_found_not_resent(setup: Setup) -> None:
    setup.kind = DeliveryKind.FOLLOWUP
    interaction = await setup.command()
    await crash_after_send(setup)
    assert len(interaction.followup_ids) == 1
    await setup.clock.advance(31.0)
    assert await setup.relay.run_once() == 1
    assert len(interaction.followup_ids) == 1  # not sent twice
    (record,) = await setup.outbox.records()
    assert (record.state, record.resolution) == (OutboxState.DELIVERED, "found in channel")
    assert record.message_id == interaction.followup_ids[0]


async def test_an_in_doubt_public_followup_that_never_arrived_is_sent(setup: Setup) -> None:
    setup.kind = DeliveryKind.FOLLOWUP
    setup.emulator.faults.set_rules(
        [FaultRule(route="/webhooks/*", method="POST", latency=(0.0, 0.0), status=503, count=1)]
    )
    interaction = await setup.command()
    await crash_after_send(setup)  # its call failed: nothing reached the channel
    await setup.clock.advance(31.0)
    await setup.relay.run_once()
    assert len(interaction.followup_ids) == 1
    (record,) = await setup.outbox.records()
    assert (record.state, record.resolution) == (OutboxState.DELIVERED, "not found in channel")


async def test_an_in_doubt_ephemeral_followup_follows_the_policy(setup: Setup) -> None:
    setup.kind = DeliveryKind.FOLLOWUP
    setup.ephemeral = True
    interaction = await setup.command()
    await crash_after_send(setup)
    await setup.clock.advance(31.0)
    setup.relay.settings = OutboxSettings(ephemeral_in_doubt="dead_letter")
    await setup.relay.run_once()
    (record,) = await setup.outbox.records()
    assert (record.state, record.dead_reason) == (OutboxState.DEAD, "in doubt: no way to check")
    assert len(interaction.followup_ids) == 1  # the user saw it once (or, in general, never)


async def test_a_crash_before_sending_is_resolved_as_never_sent(setup: Setup) -> None:
    interaction = await setup.command()
    assert await setup.outbox.claim("crashed-relay", limit=10)
    await setup.clock.advance(31.0)
    await setup.relay.run_once()
    (record,) = await setup.outbox.records()
    assert (record.state, record.resolution) == (OutboxState.DELIVERED, "claimed, never sent")
    assert original(setup, interaction)["content"] == f"answer {interaction.id}"


async def test_a_channel_message_is_deduplicated_by_its_nonce(setup: Setup) -> None:
    channel_id = setup.emulator.channel_ids[0]
    async with setup.database.transaction() as conn:
        await setup.outbox.channel_message(conn, channel_id, "announcement", key="a1")
    await crash_after_send(setup)
    await setup.clock.advance(31.0)
    await setup.relay.run_once()
    contents = [m["content"] for m in setup.emulator.messages(channel_id)]
    assert contents.count("announcement") == 1
    (record,) = await setup.outbox.records()
    assert (record.state, record.resolution) == (OutboxState.DELIVERED, "nonce redo")
    assert setup.emulator.ledger.counters["nonce_duplicates"] == 1


async def test_the_relay_loop_wakes_on_enqueue(setup: Setup) -> None:
    await setup.relay.start()
    interaction = await setup.command()
    # Less clock time than one poll interval (1 s): only the wake-up (and its short
    # second looks, for a PostgreSQL commit that lands after it) can deliver in time.
    for _ in range(25):
        if original(setup, interaction)["content"]:
            break
        await asyncio.sleep(0.01)
        await setup.clock.advance(0.02)
    assert original(setup, interaction)["content"] == f"answer {interaction.id}"
    assert setup.relay.running
    await setup.relay.close()
    assert not setup.relay.running


async def test_health_warns_when_the_oldest_pending_item_is_old(setup: Setup) -> None:
    channel_id = setup.emulator.channel_ids[0]
    setup.emulator.faults.set_rules([FaultRule(route="/channels/*", method="POST", status=503)])
    async with setup.database.transaction() as conn:
        await setup.outbox.channel_message(conn, channel_id, "stuck", key="s1")
    await setup.relay.drain()
    assert setup.relay.health_check() is None
    await setup.clock.advance(61.0)
    await setup.relay.drain()
    check = setup.relay.health_check()
    assert check is not None
    assert check[0] == "warning"
    names = {metric.name for metric in setup.relay.collect()}
    assert "steadybot_outbox_oldest_pending_seconds" in names


def test_illegal_transitions_name_both_states() -> None:
    with pytest.raises(IllegalOutboxTransition, match="delivered to sending"):
        OutboxState.DELIVERED.check(OutboxState.SENDING)
    OutboxState.PENDING.check(OutboxState.SENDING)


def test_items_are_checked() -> None:
    with pytest.raises(ValueError, match="needs interaction_id"):
        OutboxItem(key="k", kind=DeliveryKind.FOLLOWUP, payload={"content": "x"})
    with pytest.raises(ValueError, match="key"):
        OutboxItem(key="", kind=DeliveryKind.CHANNEL_MESSAGE, payload={}, channel_id="1")
    item = OutboxItem(
        key="k",
        kind=DeliveryKind.EDIT_ORIGINAL,
        payload={"content": "x"},
        interaction_id="1",
        application_id="2",
        token="secret-token",
        expires_at=1.0,
    )
    assert "secret-token" not in repr(item)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_relays_on_postgresql_never_deliver_one_item_twice(
    database_url: str,
) -> None:
    clock = ManualClock()
    # No rate limits: the buckets would wait on the manual clock; this is about claims.
    unlimited = RateLimitSettings(enabled=False)
    async with Emulator(clock=clock, members=5, rate_limits=unlimited) as emulator:
        channel_id = emulator.channel_ids[0]
        databases = [await open_database(database_url, clock=clock) for _ in range(2)]
        bots = [Bot(bot_settings(emulator), clock=clock) for _ in range(2)]
        try:
            outboxes = [Outbox(db, settings=OutboxSettings(batch_size=7)) for db in databases]
            await outboxes[0].migrate()
            async with databases[0].transaction() as conn:
                for n in range(60):
                    await outboxes[0].channel_message(conn, channel_id, f"m{n}", key=f"m{n}")
            relays = [
                OutboxRelay(outbox, bot.rest, relay_id=f"r{i}")
                for i, (outbox, bot) in enumerate(zip(outboxes, bots, strict=True))
            ]
            await asyncio.gather(*(relay.drain() for relay in relays))
            delivered = [relay.statistics().delivered for relay in relays]
            assert sum(delivered) == 60
            assert all(count > 0 for count in delivered), delivered  # both took part
            contents = sorted(m["content"] for m in emulator.messages(channel_id))
            assert contents == sorted(f"m{n}" for n in range(60))  # each exactly once
            assert emulator.ledger.counters["nonce_duplicates"] == 0
        finally:
            for bot in bots:
                await bot.close()
            for db in databases:
                await db.close()


async def test_bot_use_outbox_runs_the_relay_with_the_bot(database: Database) -> None:
    from support import settings

    bot = Bot(settings(watchdog_enabled=False), clock=database.clock)
    outbox = bot.use_outbox(database)
    await outbox.migrate()
    assert bot.outbox is outbox
    with pytest.raises(RuntimeError, match="already"):
        bot.use_outbox(database)
    await bot.start()
    relay = bot.outbox_relay
    assert relay is not None
    assert relay.running
    assert b"steadybot_outbox_items" in bot.metrics.exposition()
    await bot.close()
    assert not relay.running


async def test_ended_items_are_purged_after_the_retention(setup: Setup) -> None:
    setup.relay.settings = OutboxSettings(retention=100.0)
    await setup.command()
    await setup.relay.drain()
    assert await setup.relay.purge() == 0
    await setup.clock.advance(101.0)
    assert await setup.relay.purge() == 1
    assert await setup.outbox.records() == []


async def test_a_charge_and_its_message_commit_together_or_not_at_all(
    database: Database,
) -> None:
    from steadybot.credits import LEDGER_MIGRATIONS, Ledger, ReservationState

    await database.migrate([*LEDGER_MIGRATIONS])
    outbox = Outbox(database)
    await outbox.migrate()
    ledger = Ledger(database)
    await ledger.open_account("user:1")
    await ledger.deposit("user:1", 10, key="d")
    hold = await ledger.reserve("user:1", 5, timeout=60, key="r")

    async def charge_and_tell(conn: Connection, fail: bool) -> None:
        await ledger.post(hold.id, key="p", conn=conn)
        await outbox.channel_message(conn, "1", "charged", key="m")
        if fail:
            raise Boom

    with pytest.raises(Boom):
        await database.run_transaction(lambda conn: charge_and_tell(conn, True))
    assert (await ledger.reservation(hold.id)).state is ReservationState.PENDING
    assert await outbox.records() == []
    await database.run_transaction(lambda conn: charge_and_tell(conn, False))
    assert (await ledger.reservation(hold.id)).state is ReservationState.POSTED
    assert [r.key for r in await outbox.records()] == ["m"]
    assert (await ledger.balance("user:1")).posted == 5
    assert (await ledger.reconcile()).ok


async def test_next_due_is_the_earliest_retry_or_lapsing_lease(setup: Setup) -> None:
    outbox, clock = setup.outbox, setup.clock
    assert await outbox.next_due() is None
    channel_id = setup.emulator.channel_ids[0]
    async with setup.database.transaction() as conn:
        await outbox.channel_message(conn, channel_id, "one", key="n1")
        await outbox.channel_message(conn, channel_id, "two", key="n2")
    start = clock.time()
    assert await outbox.next_due() == start  # pending, due at once
    (first,) = await outbox.claim("r", limit=1)
    assert await outbox.next_due() == start  # the other one is still due
    assert await outbox.reschedule(first, "r", at=start + 500.0, error="x")
    (second,) = await outbox.claim("r", limit=1)
    assert await outbox.next_due() == second.lease_until  # the lease lapses first
    assert await outbox.finish_dead(second, "r", reason="x")
    assert await outbox.next_due() == start + 500.0


async def test_a_claim_whose_lease_lapsed_cannot_record_a_result(setup: Setup) -> None:
    outbox, clock = setup.outbox, setup.clock
    async with setup.database.transaction() as conn:
        await outbox.channel_message(conn, setup.emulator.channel_ids[0], "hi", key="f1")
    (first,) = await outbox.claim("a", limit=1)
    await clock.advance(31.0)
    (second,) = await outbox.claim("b", limit=1)  # another relay inherits it, in doubt
    await clock.advance(31.0)
    (third,) = await outbox.claim("a", limit=1)  # the same relay, a later claim
    assert third.in_doubt
    assert third.claimed_at > first.claimed_at
    assert not await outbox.finish_dead(first, "a", reason="late")  # same relay, old claim
    assert not await outbox.finish_dead(second, "b", reason="late")  # another relay's
    assert not await outbox.finish_dead(third, "b", reason="late")  # not b's claim
    assert not await outbox.mark_route(second, "b", DeliveryRoute.CHANNEL)
    assert await outbox.finish_delivered(
        third, "a", route=DeliveryRoute.CHANNEL, message_id="m1", resolution=None
    )
    (record,) = await outbox.records()
    assert (record.state, record.message_id, record.dead_reason) == (
        OutboxState.DELIVERED,
        "m1",
        None,
    )
