"""The applications story end to end: steadybot's bot versus the naive one, double clicks."""

from __future__ import annotations

import pytest

from steadybot.crowd import run_crowd
from steadybot.demo import load_story
from steadybot.emulator import BucketLimit, Emulator, RateLimitSettings
from steadybot.serving import serve_in_process

LIMITS = RateLimitSettings(
    buckets={**RateLimitSettings().buckets, "channel-create": BucketLimit(50, 1.0)}
)


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
