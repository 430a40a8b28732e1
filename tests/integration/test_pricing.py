"""The pricing story through the emulator: the bot's reset=True select, in-process."""

from __future__ import annotations

import asyncio

import pytest

from steadybot import Bot, Interaction
from steadybot.config import Settings
from steadybot.crowd import run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator
from steadybot.serving import serve_in_process


@pytest.mark.timeout(120)
async def test_pricing_story_resets_every_menu_under_the_flaky_profile() -> None:
    async with Emulator(
        seed=3, members=40, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "pricing")
        story.scenario.admin_pause = (0.5, 1.0)  # the story, faster
        story.scenario.pick_pause = (0.05, 0.4)
        bot = story.bot
        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        try:
            report = await run_crowd(
                emulator, story.scenario, users=25, seconds=6.0, seed=3, bot_idle=lambda: bot.idle
            )
        finally:
            await served.stop()
        stats = bot.resets.statistics()
    failed = {name: check.detail for name, check in report.checks.items() if not check.ok}
    assert not failed, failed
    assert report.failed == 0
    assert stats.requested > 0
    assert stats.succeeded <= stats.requested  # edits per pick at most one
    assert stats.coalesced > 0  # picks on a shared menu shared an edit
    assert stats.active_locks == 0


async def test_an_update_answer_resets_in_the_answer_and_a_message_answer_by_edit() -> None:
    async with Emulator(seed=4, members=5) as emulator:
        bot = Bot(
            Settings(
                application_id=emulator.application_id,
                public_key=emulator.public_key,
                token=emulator.bot_token,
                api_base=emulator.api_base,
                reset_debounce=0.5,  # the three picks below land well within it
            )
        )

        @bot.component("ride", reset=True)
        async def ride(interaction: Interaction) -> None:
            await interaction.update(content=f"picked {interaction.values[0]}")

        @bot.component("edit", reset=True, ephemeral=True)
        async def edit(interaction: Interaction) -> None:
            await interaction.respond(f"picked {interaction.values[0]}")

        served = await serve_in_process(bot.asgi())
        emulator.set_interactions_endpoint(served.url)
        channel = emulator.channel_ids[0]
        menus = {}
        for custom_id in ("ride", "edit"):
            select = {"type": 3, "custom_id": custom_id, "options": [{"label": "a", "value": "a"}]}
            body = {"content": "menu", "components": [{"type": 1, "components": [select]}]}
            menus[custom_id] = (await emulator.post_message(channel, body))["id"]
        try:
            requests_before = emulator.statistics().rest_requests
            await emulator.pick_select("ride", ["a"], message_id=menus["ride"])
            # The type-7 answer re-rendered the menu: nothing left showing, no API call.
            assert emulator.snapshot().selections == {}
            assert emulator.statistics().rest_requests == requests_before
            assert bot.resets.statistics().in_answer == 1

            for user in emulator.user_ids[:3]:
                await emulator.pick_select("edit", ["a"], message_id=menus["edit"], user_id=user)
            assert sorted(emulator.snapshot().selections) == [menus["edit"]]
            for _ in range(100):
                if bot.idle:
                    break
                await asyncio.sleep(0.02)
            assert emulator.snapshot().selections == {}
            stats = bot.resets.statistics()
            assert (stats.requested, stats.succeeded, stats.coalesced) == (3, 1, 2)
            assert emulator.world.edits[menus["edit"]] == 1
        finally:
            await served.stop()
            await bot.close()
