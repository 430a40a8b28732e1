"""The applications story end to end: steadybot's bot versus the naive one, double clicks."""

from __future__ import annotations

import asyncio

import pytest

from steadybot.clock import ManualClock
from steadybot.crowd import run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator
from steadybot.serving import serve_in_process

LIMITS = demo_rate_limits()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("naive", [False, True], ids=["steadybot", "naive"])
async def test_double_clicks_never_create_two_channels_with_steadybot(naive: bool) -> None:
    async with Emulator(seed=4, members=10, rate_limits=LIMITS) as emulator:
        story = load_story(emulator)
        story.STORE_SECONDS = (3.1, 3.2)  # past the 3 s window: the naive bot fails
        bot = story.naive_bot if naive else story.bot
        scenario = story.ApplicationsScenario()
        scenario.double_click_share = 1.0  # everyone double-clicks
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        try:
            report = await run_crowd(
                emulator,
                scenario,
                users=4,
                seconds=0.2,
                seed=2,
                bot_idle=lambda: bot.in_flight == 0,
            )
        finally:
            await served.stop()
    channels = report.checks["one channel per applicant"]
    if naive:
        assert not channels.ok, channels.detail
        assert report.failed > 0
        assert not report.ok
    else:
        assert channels.ok, channels.detail
        assert report.checks["every applicant confirmed"].ok
        assert (report.failed, report.double_acknowledged) == (0, 0)
        assert report.interactions == 8
        assert report.ok


@pytest.mark.timeout(60)
async def test_an_application_whose_token_expired_is_still_confirmed() -> None:
    """The work outlives the 15-minute token: the confirmation arrives by DM instead."""
    clock = ManualClock()
    async with Emulator(clock=clock, seed=5, members=5, rate_limits=LIMITS) as emulator:
        story = load_story(emulator)
        story.STORE_SECONDS = (901.0, 901.0)  # the store hangs past the token's life
        bot = story.bot
        bot.use_clock(clock)  # one clock for Discord and the bot, moved by the test
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        try:
            scenario = story.ApplicationsScenario()
            await scenario.setup(emulator)
            user_id = emulator.user_ids[0]
            click = await emulator.click_button(
                "apply", message_id=scenario.message_id, user_id=user_id
            )
            assert click.ack_type == 5  # progress deferred at once
            # The channel and the welcome message go out in real time; then the store
            # sleeps on the manual clock.
            for _ in range(250):
                if welcomed(emulator, user_id):
                    break
                await asyncio.sleep(0.02)
            assert welcomed(emulator, user_id)
            # Move Discord's and the bot's time past the token's life (again, should the
            # store have started sleeping only after the first move).
            for _ in range(5):
                await clock.advance(905)
                for _ in range(25):
                    if bot.in_flight == 0:
                        break
                    await asyncio.sleep(0.02)
                if bot.in_flight == 0:
                    break
            assert bot.in_flight == 0
        finally:
            await served.stop()
        dm = emulator.world.dm_channels.get(user_id)
        assert dm is not None, "the confirmation should have gone by DM"
        confirmations = [m for m in emulator.messages(dm) if story.CONFIRMATION in m["content"]]
        assert len(confirmations) == 1
        assert bot.statistics().fallbacks_delivered == 1
        assert bot.statistics().token_expired >= 1


def welcomed(emulator: Emulator, user_id: str) -> bool:
    channel = next(
        (c for c in emulator.world.channels.values() if c.get("name") == f"application-{user_id}"),
        None,
    )
    return channel is not None and bool(emulator.messages(channel["id"]))
