"""The Bot and its runner: defer policy in time, errors, unknown routes, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support import RecordingSink, command, component, harness, settings

from steadybot import Bot, Interaction, UserFacingError
from steadybot.clock import ManualClock, Timer
from steadybot.config import Settings
from steadybot.coordination.keyed import LockTimeout
from steadybot.errors import ClockInUse
from steadybot.interactions.payload import AnyInteraction


def make_bot(**overrides: object) -> tuple[Bot, RecordingSink, object]:
    h = harness(**overrides)
    bot = Bot(h.settings, clock=h.clock, transport=h.discord.transport())
    return bot, h.sink, h


async def run(bot: Bot, sink: RecordingSink, payload: AnyInteraction) -> asyncio.Task[None]:
    return bot.dispatch(payload, arrived_at=bot.clock.monotonic(), sink=sink)


async def test_fast_handler_answers_directly() -> None:
    bot, sink, _ = make_bot()

    @bot.command("ping")
    async def ping(ix: Interaction) -> None:
        await ix.respond("pong")

    await (await run(bot, sink, command("ping")))
    assert sink.types == [4]
    assert bot.statistics().answered_directly == 1


async def test_slow_handler_is_deferred_exactly_at_defer_after() -> None:
    bot, sink, h = make_bot(defer_after=1.5)

    @bot.command("slow")
    async def slow(ix: Interaction) -> None:
        await bot.clock.sleep(5)
        await ix.respond("done")

    start = bot.clock.monotonic()
    task = await run(bot, sink, command("slow"))
    await h.clock.advance(1.49)  # type: ignore[attr-defined]
    assert sink.bodies == []
    await h.clock.advance(0.01)  # type: ignore[attr-defined]
    assert sink.types == [5]
    assert sink.sent_at == [start + 1.5]
    await h.clock.advance(4)  # type: ignore[attr-defined]
    await task
    assert [(c.method, c.path.split("/")[-1]) for c in h.discord.calls] == [("PATCH", "@original")]  # type: ignore[attr-defined]
    assert bot.statistics().deferred_automatically == 1


def spy_timers(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> list[float]:
    """The delays of the timers armed on ``clock`` from now on."""
    armed: list[float] = []
    call_later = clock.call_later

    def spy(seconds: float, callback: Callable[[], None]) -> Timer:
        armed.append(seconds)
        return call_later(seconds, callback)

    monkeypatch.setattr(clock, "call_later", spy)
    return armed


async def test_handler_answering_before_its_first_wait_arms_no_defer_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot, sink, h = make_bot()
    armed = spy_timers(monkeypatch, h.clock)  # type: ignore[attr-defined]

    @bot.command("ping")
    async def ping(ix: Interaction) -> None:
        await ix.respond("pong")

    await (await run(bot, sink, command("ping")))
    assert armed == []
    assert sink.types == [4]


async def test_handler_answering_then_working_on_arms_no_defer_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot, sink, h = make_bot(defer_after=1.5)
    armed = spy_timers(monkeypatch, h.clock)  # type: ignore[attr-defined]

    @bot.command("ping")
    async def ping(ix: Interaction) -> None:
        await ix.respond("pong")
        await bot.clock.sleep(5)  # the first suspension: nothing is owed any more

    task = await run(bot, sink, command("ping"))
    await h.clock.advance(6)  # type: ignore[attr-defined]
    await task
    assert armed == [5]  # the handler's own sleep, no defer timer
    assert sink.types == [4]
    assert bot.statistics().deferred_automatically == 0


async def test_defer_timer_armed_at_the_first_wait_counts_from_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot, sink, h = make_bot(defer_after=1.5)
    armed = spy_timers(monkeypatch, h.clock)  # type: ignore[attr-defined]

    @bot.command("slow")
    async def slow(ix: Interaction) -> None:
        await asyncio.sleep(0)  # suspends: the defer timer is armed here
        await bot.clock.sleep(5)
        await ix.respond("done")

    arrived = bot.clock.monotonic() - 1.0  # the request waited 1 s before the handler ran
    task = bot.dispatch(command("slow"), arrived_at=arrived, sink=sink)
    await h.clock.settle()  # type: ignore[attr-defined]
    assert armed == [0.5, 5]
    await h.clock.advance(0.49)  # type: ignore[attr-defined]
    assert sink.bodies == []
    await h.clock.advance(0.01)  # type: ignore[attr-defined]
    assert sink.types == [5]
    assert sink.sent_at == [arrived + 1.5]
    await h.clock.advance(5)  # type: ignore[attr-defined]
    await task
    assert bot.statistics().deferred_automatically == 1


async def test_handler_failing_after_a_wait_still_gets_the_friendly_message() -> None:
    bot, sink, h = make_bot()

    @bot.command("boom")
    async def boom(ix: Interaction) -> None:
        await bot.clock.sleep(1)
        raise RuntimeError("database exploded")

    task = await run(bot, sink, command("boom"))
    await h.clock.advance(1)  # type: ignore[attr-defined]
    await task
    assert sink.bodies == [
        {"type": 4, "data": {"content": bot.settings.error_message, "flags": 64}}
    ]
    assert bot.statistics().handler_errors == 1


async def test_recently_slow_handler_is_deferred_at_once() -> None:
    bot, sink, h = make_bot(latency_min_samples=3)

    @bot.command("slow")
    async def slow(ix: Interaction) -> None:
        await bot.clock.sleep(4)
        await ix.respond("done")

    for _ in range(3):
        task = await run(bot, sink, command("slow"))
        await h.clock.advance(5)  # type: ignore[attr-defined]
        await task
    assert bot.statistics().deferred_automatically == 3
    start = bot.clock.monotonic()
    sink.sent_at.clear()
    task = await run(bot, sink, command("slow"))
    await h.clock.settle()  # type: ignore[attr-defined]
    assert sink.sent_at == [start]
    assert bot.statistics().deferred_early == 1
    await h.clock.advance(5)  # type: ignore[attr-defined]
    await task
    assert bot.latency()["slow"].slow_predicted


@pytest.mark.parametrize(("mode", "expected"), [("now", [5]), ("never", [])])
async def test_defer_now_and_never(mode: str, expected: list[int]) -> None:
    bot, sink, h = make_bot()

    @bot.command("x", defer=mode)  # type: ignore[arg-type]
    async def handler(ix: Interaction) -> None:
        await bot.clock.sleep(3.5)
        await ix.respond("late or edited")

    task = await run(bot, sink, command("x"))
    await h.clock.advance(2.9)  # type: ignore[attr-defined]
    assert sink.types == expected
    await h.clock.advance(1)  # type: ignore[attr-defined]
    await task
    if mode == "never":
        assert bot.statistics().missed_deadline == 1
        assert bot.statistics().fallbacks_delivered == 1


async def test_handler_crash_becomes_a_friendly_ephemeral_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot, sink, _ = make_bot()

    @bot.command("boom")
    async def boom(ix: Interaction) -> None:
        raise RuntimeError("database exploded")

    @bot.command("no")
    async def no(ix: Interaction) -> None:
        raise UserFacingError("You need the staff role.")

    await (await run(bot, sink, command("boom")))
    await (await run(bot, sink, command("no")))
    assert sink.bodies[0] == {
        "type": 4,
        "data": {"content": bot.settings.error_message, "flags": 64},
    }
    assert sink.bodies[1] == {
        "type": 4,
        "data": {"content": "You need the staff role.", "flags": 64},
    }
    assert bot.statistics().handler_errors == 1
    assert "database exploded" in caplog.text  # logged for us, not shown to the user


async def test_unknown_route_gets_a_polite_ephemeral_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot, sink, _ = make_bot()
    await (await run(bot, sink, component("gone:1")))
    assert sink.bodies == [
        {"type": 4, "data": {"content": bot.settings.unknown_route_message, "flags": 64}}
    ]
    assert bot.statistics().unknown_routes == 1
    assert "no handler for MESSAGE_COMPONENT 'gone:1'" in caplog.text


async def test_options_and_custom_id_arguments_arrive_as_keywords() -> None:
    bot, sink, _ = make_bot()
    seen: list[object] = []

    @bot.command("give")
    async def give(ix: Interaction, amount: int, note: str | None) -> None:
        seen.append((amount, note))
        await ix.respond("ok")

    @bot.component("vote:{poll:int}:{choice}")
    async def vote(ix: Interaction, poll: int, choice: str) -> None:
        seen.append((poll, choice))
        seen.append(dict(ix.args))  # the same arguments, on the Interaction
        await ix.update("voted")

    await (await run(bot, sink, command("give", [{"name": "amount", "type": 4, "value": 5}])))
    await (await run(bot, sink, component("vote:12:yes")))
    assert seen == [(5, None), (12, "yes"), {"poll": 12, "choice": "yes"}]


def test_registration_errors_are_immediate() -> None:
    bot, _, _ = make_bot()
    with pytest.raises(TypeError, match="no value for parameter"):

        @bot.component("vote:{poll:int}")
        async def vote(ix: Interaction, poll: int, missing: str) -> None: ...

    with pytest.raises(TypeError, match="async"):
        bot.command("sync")(lambda ix: None)  # type: ignore[arg-type,return-value]


async def test_close_waits_for_in_flight_work_within_the_grace_period() -> None:
    bot, sink, h = make_bot(shutdown_grace=10)
    finished: list[str] = []

    @bot.command("work")
    async def work(ix: Interaction) -> None:
        await bot.clock.sleep(float(ix.options.get("seconds") or 0))  # type: ignore[arg-type]
        finished.append(str(ix.options.get("seconds")))
        await ix.respond("done")

    short = await run(bot, sink, command("work", [{"name": "seconds", "type": 10, "value": 5}]))
    long = await run(bot, sink, command("work", [{"name": "seconds", "type": 10, "value": 60}]))
    closing = asyncio.create_task(bot.close())
    await h.clock.settle()  # type: ignore[attr-defined]
    assert not bot.accepting
    await h.clock.advance(10)  # type: ignore[attr-defined]
    await closing
    assert finished == ["5"]
    assert short.done()
    assert long.cancelled()
    assert bot.statistics().handlers_cancelled == 1
    # The cut-off handler had been deferred at 2 s: its "thinking…" is replaced by the
    # interrupted message, not by a misleading "done".
    edits = h.discord.where(lambda c: c.method == "PATCH" and c.path.endswith("@original"))
    contents = [c.json.get("content") for c in edits if isinstance(c.json, dict)]
    assert bot.settings.interrupted_message in contents
    assert bot.settings.done_message not in contents


async def test_work_spawned_during_the_shutdown_grace_is_waited_for_too() -> None:
    clock = ManualClock()
    bot = Bot(settings(shutdown_grace=5.0))
    bot.use_clock(clock)
    finished: list[str] = []

    async def later(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        finished.append(name)

    async def handler_like() -> None:
        await clock.sleep(1.0)
        bot.spawn(later("spawned in the grace", 1.0))

    async def close() -> None:
        await bot.close()
        finished.append("closed")

    bot.spawn(handler_like())
    closing = asyncio.ensure_future(close())
    for _ in range(40):
        await clock.advance(0.25)
    await closing
    assert finished == ["spawned in the grace", "closed"]
    assert bot.idle


async def test_start_hooks_run_once_in_order_and_close_hooks_in_reverse() -> None:
    bot = Bot(Settings(watchdog_enabled=False))
    seen: list[str] = []

    @bot.on_start
    async def load_static() -> None:
        seen.append("start 1")

    @bot.on_start
    async def warm() -> None:
        seen.append("start 2")

    @bot.on_close
    async def flush() -> None:
        seen.append("close 1")

    @bot.on_close
    async def broken() -> None:
        seen.append("close 2")
        raise RuntimeError("pool already gone")

    await bot.start()
    await bot.start()  # idempotent: hooks do not run twice
    assert seen == ["start 1", "start 2"]
    await bot.close()  # the failing hook is logged, the other one still runs
    assert seen == ["start 1", "start 2", "close 2", "close 1"]


async def test_a_failing_start_hook_fails_the_start() -> None:
    bot = Bot(Settings(watchdog_enabled=False))

    @bot.on_start
    async def migrate() -> None:
        raise RuntimeError("database unreachable")

    with pytest.raises(RuntimeError, match="database unreachable"):
        await bot.start()
    await bot.close()


# --- use_clock: only before anything is made on the bot's clock ---------------------------


def parts_made_on_the_clock() -> dict[str, Callable[[Bot], object]]:
    async def nothing() -> None:
        return None

    return {
        "guards": lambda bot: bot.locks,
        "caches": lambda bot: bot.cache("board", ttl=30),
        "members": lambda bot: bot.members,
        "resets": lambda bot: bot.resets,
        "health": lambda bot: bot.health,
        "breaker": lambda bot: bot.breaker("db"),
        "asgi": lambda bot: bot.asgi(),
        "background": lambda bot: bot.guards.background("user:1", nothing),
    }


@pytest.mark.parametrize("part", sorted(parts_made_on_the_clock()))
async def test_use_clock_after_a_part_was_made_on_the_old_clock_is_refused(part: str) -> None:
    old = ManualClock()
    bot = Bot(settings(), clock=old)
    made = parts_made_on_the_clock()[part](bot)
    if asyncio.iscoroutine(made):
        made.close()  # background()'s work, never started
    guards = bot.guards if part in {"guards", "background"} else None
    with pytest.raises(ClockInUse, match=r"use_clock\(\) after the bot made") as refused:
        bot.use_clock(ManualClock())
    assert ("guards" if part == "background" else part) in str(refused.value)  # named
    # Nothing was swapped or dropped: the part keeps running on the clock it was made
    # on, and the bot still owns (and will close) what it made.
    assert bot.clock is old
    if guards is not None:
        assert bot.guards is guards
    await bot.close()


async def test_use_clock_after_the_rest_client_sent_requests_is_refused() -> None:
    h = harness()
    bot = Bot(h.settings, clock=h.clock, transport=h.discord.transport())
    await bot.rest.create_message("1", {"content": "hi"})
    with pytest.raises(ClockInUse, match="REST requests"):
        bot.use_clock(ManualClock())
    await bot.close()


async def test_use_clock_after_start_is_refused() -> None:
    bot = Bot(settings(watchdog_enabled=False))
    await bot.start()
    with pytest.raises(ClockInUse, match="started"):
        bot.use_clock(ManualClock())
    await bot.close()


async def test_parts_made_after_use_clock_run_on_the_new_clock() -> None:
    bot = Bot(settings())

    @bot.component("apply", exclusive="user")  # registering does not make the guards
    async def apply(ix: Interaction) -> None:
        await ix.respond("ok")

    clock = ManualClock()
    bot.use_clock(clock)
    board = bot.cache("board", ttl=5)
    board.set("k", 1)
    await clock.advance(5.1)
    assert board.get("k") is None  # expired on the new clock
    async with bot.locks("order:1"):
        waiting = asyncio.ensure_future(bot.locks("order:1", timeout=2).__aenter__())
        await clock.advance(1.9)
        assert not waiting.done()
        await clock.advance(0.2)
        with pytest.raises(LockTimeout):
            await waiting
    await bot.close()
