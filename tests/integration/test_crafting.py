"""The crafting story through the emulator: the steadybot board passes its checks, the
first version fails them (so the checks can fail)."""

from __future__ import annotations

import logging
from types import ModuleType

import pytest

from steadybot.crowd import CrowdReport, run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator
from steadybot.serving import serve_in_process

USERS = 30
SECONDS = 5.0


async def play(
    emulator: Emulator, story: ModuleType, *, naive: bool, users: int = USERS
) -> CrowdReport:
    bot = story.naive_bot if naive else story.bot
    scenario = story.scenario
    scenario.rounds = (2, 3)
    scenario.think = (0.1, 0.4)
    scenario.work = (0.1, 0.4)
    story.board.settings = story.settings.model_copy(update={"claim_ttl": 2.0})
    served = await serve_in_process(bot.asgi())
    emulator.set_interactions_endpoint(served.url)
    try:
        return await run_crowd(
            emulator,
            scenario,
            users=users,
            seconds=SECONDS,
            seed=5,
            bot_idle=lambda: bot.idle,
            # The first version leaves answers owed; its report need not wait long.
            settle_timeout=5.0 if naive else 20.0,
        )
    finally:
        await served.stop()


@pytest.mark.timeout(120)
async def test_the_board_claims_each_request_once_and_shows_every_change() -> None:
    async with Emulator(
        seed=5, members=60, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "crafting")
        report = await play(emulator, story, naive=False)
        figures = story.figures(story.bot)
    failed = {name: check.detail for name, check in report.checks.items() if not check.ok}
    assert not failed, (failed, figures)
    assert report.failed == 0
    assert figures["members_warmed"] == 60
    assert figures["members_fetched_one_by_one"] == 0
    assert figures["claims"] > 0
    assert figures["confirmations_deleted"] > 0
    assert figures["members_pinned_now"] == 0


@pytest.mark.timeout(120)
async def test_the_first_version_fails_the_checks() -> None:
    async with Emulator(seed=5, members=60, rate_limits=demo_rate_limits()) as emulator:
        story = load_story(emulator, "crafting")
        logging.getLogger("steadybot").setLevel(logging.CRITICAL)
        try:
            report = await play(emulator, story, naive=True, users=15)
        finally:
            logging.getLogger("steadybot").setLevel(logging.NOTSET)
    failed = {name for name, check in report.checks.items() if not check.ok}
    assert "no member fetched after warm-up" in failed
    assert failed - {"no member fetched after warm-up"}, report.checks
