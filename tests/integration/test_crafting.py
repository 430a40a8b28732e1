"""The crafting story through the emulator: the steadybot board passes its checks, the
first version fails them (so the checks can fail)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from types import ModuleType
from typing import TypeVar

import pytest
from support import assert_checks_pass, serving

from examples.crafting.scenario import Card, subcommand
from steadybot.crowd import CrowdReport, run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator, RateLimitSettings

T = TypeVar("T")
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
    async with serving(emulator, bot):
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


@pytest.mark.timeout(120)
async def test_the_board_claims_each_request_once_and_shows_every_change() -> None:
    async with Emulator(
        seed=5, members=60, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "crafting")
        report = await play(emulator, story, naive=False)
        figures = story.figures(story.bot)
    assert_checks_pass(report, figures)
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


@pytest.mark.parametrize("naive", [False, True], ids=["steadybot", "first version"])
async def test_a_double_click_on_confirm_claims_once_or_twice(naive: bool) -> None:
    """The same double click: one claim on steadybot, two on the first version, and the
    scenario's check sees the difference from Discord's side."""
    async with Emulator(seed=6, members=10, rate_limits=RateLimitSettings(enabled=False)) as emu:
        story = load_story(emu, "crafting")
        bot = story.naive_bot if naive else story.bot
        async with serving(emu, bot):
            requester, crafter = emu.user_ids[5], emu.user_ids[1]
            scenario = story.scenario
            await scenario.setup(emu)  # crafters join; user 1 is a blacksmith
            story.board.fast_mode_users.discard(crafter)  # asked "are you sure?"
            options = subcommand("request", profession="blacksmith", item="iron sword")
            request = await emu.send_command("craft", user_id=requester, options=options)
            card_id = request.original_message_id or ""
            scenario.cards.append(Card(request.id, card_id, "blacksmith", requester))
            claim = await emu.click_button(
                f"craft:claim:{request.id}", message_id=card_id, user_id=crafter
            )
            confirm = f"craft:confirm:{request.id}"
            prompt = claim.original_message_id or ""
            await asyncio.gather(
                emu.click_button(confirm, message_id=prompt, user_id=crafter),
                _later(0.05, emu.click_button(confirm, message_id=prompt, user_id=crafter)),
            )
            for _ in range(200):
                if bot.idle:
                    break
                await asyncio.sleep(0.02)
            checks = scenario.checks(emu.snapshot(), [])
    store = story.naive_board.store if naive else story.board.store
    assert store.claimed_twice() == ([request.id] if naive else [])
    assert checks["no request claimed twice"].ok is not naive, checks["no request claimed twice"]


async def _later(delay: float, work: Awaitable[T]) -> T:
    await asyncio.sleep(delay)
    return await work
