"""Handler options exclusive= / serialize=, bot.background, bot.locks and bot.flights,
on the in-process backend and a ManualClock."""

from __future__ import annotations

import asyncio

import pytest
from support import MESSAGE_ID, RecordingSink, command, component, harness, payload

from steadybot import Bot, Interaction
from steadybot.coordination import AlreadyRunning, KeyedLock, Priority
from steadybot.interactions.guards import GuardOptions, interaction_key
from steadybot.interactions.payload import AnyInteraction

BUSY = "⏳ Your application is already being processed."


def make_bot(**overrides: object) -> tuple[Bot, RecordingSink]:
    h = harness(**overrides)
    return Bot(h.settings, clock=h.clock, transport=h.discord.transport()), h.sink


def click(custom_id: str = "apply", user: str = "400000000000000004") -> AnyInteraction:
    message = {"id": MESSAGE_ID, "channel_id": "300000000000000003", "content": "x", "flags": 0}
    return payload(
        3,
        {"custom_id": custom_id, "component_type": 2},
        message=message,
        member={"user": {"id": user, "username": "u"}, "roles": []},
    )


class Sinks:
    """One recording sink per interaction, dispatched on the bot's clock."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.sinks: list[RecordingSink] = []
        self.tasks: list[asyncio.Task[None]] = []

    def send(self, interaction: AnyInteraction) -> RecordingSink:
        sink = RecordingSink()
        self.sinks.append(sink)
        self.tasks.append(
            self.bot.dispatch(interaction, arrived_at=self.bot.clock.monotonic(), sink=sink)
        )
        return sink

    async def done(self) -> None:
        await asyncio.gather(*self.tasks)


def content(sink: RecordingSink) -> object:
    body = sink.bodies[0]
    data = body.get("data")
    assert isinstance(data, dict)
    return data.get("content"), data.get("flags")


async def test_exclusive_user_answers_a_second_click_busy_and_runs_the_handler_once() -> None:
    bot, _ = make_bot()
    clock = bot.clock
    runs: list[str] = []

    @bot.component("apply", exclusive="user", busy=BUSY)
    async def apply(ix: Interaction) -> None:
        runs.append(ix.user_id or "")
        await clock.sleep(1.0)
        await ix.respond("✅ done", ephemeral=True)

    @bot.component("other", exclusive="user")
    async def other(ix: Interaction) -> None:
        runs.append("other")
        await ix.respond("ok", ephemeral=True)

    sinks = Sinks(bot)
    first = sinks.send(click())
    await clock.advance(0.05)  # type: ignore[attr-defined]
    second = sinks.send(click())  # the double click
    third = sinks.send(click(user="400000000000000099"))  # another user: not blocked
    button = sinks.send(click("other"))  # another button of the same user: not blocked
    await clock.advance(0.01)  # type: ignore[attr-defined]
    assert second.types == [4]
    assert content(second) == (BUSY, 64)  # ephemeral busy message, at once
    assert button.types == [4]
    await clock.advance(1.0)  # type: ignore[attr-defined]
    await sinks.done()
    assert runs == ["400000000000000004", "400000000000000099", "other"]
    assert content(first)[0] == content(third)[0] == "✅ done"
    stats = bot.guards.statistics()
    assert stats.busy == 1
    assert stats.locks.active_keys == 0  # nothing outlives its use
    spec = next(s for s in bot.handler_specs() if s.name == "apply")
    assert spec.metrics.outcomes == {"answered": 2, "declined": 1}
    # Once the first run is over, the user may click again.
    again = sinks.send(click())
    await clock.advance(1.0)  # type: ignore[attr-defined]
    await sinks.done()
    assert content(again)[0] == "✅ done"
    assert b"steadybot_busy_rejections_total 1.0" in bot.metrics.exposition()


async def test_a_key_function_shares_one_key_between_handlers() -> None:
    bot, _ = make_bot()
    clock = bot.clock

    def order(ix: Interaction) -> str:
        return f"order:{ix.message.id if ix.message else '?'}"

    @bot.component("approve", exclusive=order)
    async def approve(ix: Interaction) -> None:
        await clock.sleep(1.0)

    @bot.component("reject", exclusive=order)
    async def reject(ix: Interaction) -> None:
        raise AssertionError("must not run while approve runs on the same order")

    sinks = Sinks(bot)
    sinks.send(click("approve"))
    await clock.advance(0.01)  # type: ignore[attr-defined]
    busy = sinks.send(click("reject", user="400000000000000099"))
    await clock.advance(0.01)  # type: ignore[attr-defined]
    assert content(busy) == (bot.settings.busy_message, 64)
    await clock.advance(2.0)  # type: ignore[attr-defined]
    await sinks.done()


async def test_serialize_runs_one_at_a_time_in_arrival_order_and_defers_the_waiters() -> None:
    bot, _ = make_bot(defer_after=1.5)
    clock = bot.clock
    log: list[str] = []

    @bot.command("buy", serialize="user")
    async def buy(ix: Interaction) -> None:
        log.append(f"in {ix.id}")
        await clock.sleep(1.0)
        log.append(f"out {ix.id}")
        await ix.respond("bought")

    sinks = Sinks(bot)
    commands = [command("buy") for _ in range(3)]
    for cmd in commands:
        sinks.send(cmd)
    await clock.advance(1.5)  # type: ignore[attr-defined]
    # The first answered directly; the others wait their turn, deferred in time.
    assert [s.types for s in sinks.sinks] == [[4], [5], [5]]
    await clock.advance(2.0)  # type: ignore[attr-defined]
    await sinks.done()
    ids = [c.id for c in commands]
    assert log == [f"{side} {i}" for i in ids for side in ("in", "out")]
    stats = bot.guards.statistics()
    assert (stats.serialized, stats.waited, stats.serial_keys) == (3, 2, 0)
    assert stats.wait_seconds == pytest.approx(1.0 + 2.0)


async def test_a_turn_that_does_not_come_in_time_tells_the_user_to_retry() -> None:
    h = harness(serialize_wait=5.0)
    bot = Bot(h.settings, clock=h.clock, transport=h.discord.transport())
    clock = bot.clock
    runs = 0

    @bot.command("slow", serialize="user")
    async def slow(ix: Interaction) -> None:
        nonlocal runs
        runs += 1
        await clock.sleep(60.0)  # stuck
        await ix.respond("finally")

    sinks = Sinks(bot)
    sinks.send(command("slow"))
    waiting = sinks.send(command("slow"))
    await clock.advance(5.0)  # type: ignore[attr-defined]
    await clock.advance(0.1)  # type: ignore[attr-defined]
    assert runs == 1
    assert waiting.types == [5]  # deferred while it waited; the retry message follows
    await clock.advance(60.0)  # type: ignore[attr-defined]
    await sinks.done()
    assert bot.guards.statistics().turn_timeouts == 1
    assert runs == 1
    told = [c.json for c in h.discord.calls if c.path.endswith("@original")]
    assert told[0]["content"] == bot.settings.serialize_timeout_message  # type: ignore[index]


async def test_background_work_runs_after_the_interactive_work_waiting_for_the_key() -> None:
    bot, _ = make_bot()
    clock = bot.clock
    order: list[str] = []

    @bot.command("edit", serialize="user")
    async def edit(ix: Interaction) -> None:
        order.append(f"interactive {len(order)}")
        await clock.sleep(1.0)
        await ix.respond("ok")

    async def recalculate() -> None:
        order.append("background")
        await clock.sleep(1.0)

    sinks = Sinks(bot)
    sinks.send(command("edit"))
    await clock.advance(0.1)  # type: ignore[attr-defined]
    job = bot.background("user:400000000000000004", recalculate)  # queued first ...
    await clock.advance(0.1)  # type: ignore[attr-defined]
    sinks.send(command("edit"))  # ... but the user's click goes before it
    for _ in range(4):
        await clock.advance(1.0)  # type: ignore[attr-defined]
    await sinks.done()
    await job
    assert order == ["interactive 0", "interactive 1", "background"]
    stats = bot.guards.statistics()
    assert (stats.background_done, stats.background_failed) == (1, 0)


async def test_failing_or_delayed_background_work_is_counted_not_raised() -> None:
    bot, _ = make_bot()
    clock = bot.clock
    ran: list[float] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async def later() -> None:
        ran.append(clock.monotonic())

    start = clock.monotonic()
    failing = bot.background("user:1", broken)
    delayed = bot.background("user:1", later, delay=30.0)
    await clock.advance(30.0)  # type: ignore[attr-defined]
    await asyncio.gather(failing, delayed)
    assert ran == [start + 30.0]
    stats = bot.guards.statistics()
    assert (stats.background_done, stats.background_failed) == (1, 1)


async def test_bot_locks_give_increasing_fences_and_flights_share_one_run() -> None:
    bot, _ = make_bot()
    async with bot.locks("request:1") as first:
        pass
    async with bot.locks("request:2") as second:
        assert not second.lost
        second.check()
    assert second.fence > first.fence
    assert isinstance(bot.locks, KeyedLock)  # no redis_url: in-process
    runs = 0
    gate = asyncio.Event()

    async def report() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return 7

    both = asyncio.gather(
        bot.flights.join("report", report, result_type=int),
        bot.flights.join("report", report, result_type=int),
    )
    await asyncio.sleep(0)
    with pytest.raises(AlreadyRunning):
        await bot.flights.reject("report", report)
    gate.set()
    assert await both == [7, 7]
    assert runs == 1
    await bot.close()


def test_bad_options_are_refused_at_registration() -> None:
    bot, _ = make_bot()

    async def handler(ix: Interaction) -> None:
        return None

    with pytest.raises(ValueError, match="exclusive='person'"):
        bot.component("a", exclusive="person")(handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a component"):
        bot.command("b", serialize="message")(handler)
    with pytest.raises(ValueError, match="busy= needs exclusive="):
        bot.component("c", busy="wait")(handler)
    with pytest.raises(TypeError, match="Priority"):
        bot.modal("d", serialize="user", priority=3)(handler)  # type: ignore[arg-type]


def test_keys_by_kind_fall_back_to_the_user() -> None:
    h = harness()

    def wrap(p: AnyInteraction) -> Interaction:
        return Interaction(p, h.responder(p), rest=h.rest, clock=h.clock)

    ix = wrap(component())
    assert interaction_key("user", ix) == "user:400000000000000004"
    assert interaction_key("guild", ix) == "guild:200000000000000002"
    assert interaction_key("channel", ix) == "channel:300000000000000003"
    assert interaction_key("message", ix) == f"message:{MESSAGE_ID}"
    assert interaction_key(lambda i: f"x:{i.user_id}", ix) == "x:400000000000000004"
    dm = wrap(command())
    assert interaction_key("message", dm) == "user:400000000000000004"
    with pytest.raises(TypeError, match="non-empty str"):
        interaction_key(lambda i: "", ix)
    assert GuardOptions(serialize="user").priority is Priority.INTERACTIVE
