"""The pricing story through the emulator: the bot's reset=True select, in-process."""

from __future__ import annotations

import asyncio

import pytest
from support import assert_checks_pass, emulator_bot, serving

from steadybot import Bot, Interaction
from steadybot.crowd import run_crowd
from steadybot.demo import demo_rate_limits, load_story
from steadybot.emulator import Emulator


@pytest.mark.timeout(120)
async def test_pricing_story_resets_every_menu_under_the_flaky_profile() -> None:
    async with Emulator(
        seed=3, members=40, faults="flaky", rate_limits=demo_rate_limits()
    ) as emulator:
        story = load_story(emulator, "pricing")
        story.scenario.admin_pause = (1.0, 1.5)  # the admin, faster; members at their pace
        bot = story.bot
        async with serving(emulator, bot):
            report = await run_crowd(
                emulator, story.scenario, users=25, seconds=6.0, seed=3, bot_idle=lambda: bot.idle
            )
        stats = bot.resets.statistics()
    assert_checks_pass(report)
    assert stats.requested > 0
    assert stats.succeeded <= stats.requested  # edits per pick at most one
    assert stats.coalesced > 0  # picks on a shared menu shared an edit
    assert stats.active_locks == 0


async def post_menu(emulator: Emulator, custom_id: str) -> str:
    select = {"type": 3, "custom_id": custom_id, "options": [{"label": "a", "value": "a"}]}
    body = {"content": "menu", "components": [{"type": 1, "components": [select]}]}
    return str((await emulator.post_message(emulator.channel_ids[0], body))["id"])


async def until_idle(bot: Bot) -> None:
    for _ in range(200):
        if bot.idle:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the bot did not become idle")


async def test_resets_ride_in_the_answer_unless_the_bot_is_changing_the_menu() -> None:
    async with Emulator(seed=4, members=5) as emulator:
        bot = emulator_bot(emulator, reset_debounce=0.05)

        @bot.component("ride", reset=True)
        async def ride(interaction: Interaction) -> None:
            await interaction.update(content=f"picked {interaction.values[0]}")

        @bot.component("price", reset=True, ephemeral=True)
        async def price(interaction: Interaction) -> None:
            await interaction.respond(f"{interaction.values[0]} costs $5")

        try:
            async with serving(emulator, bot):
                menus = {name: await post_menu(emulator, name) for name in ("ride", "price")}
                requests_before = emulator.statistics().rest_requests
                await emulator.pick_select("ride", ["a"], message_id=menus["ride"])
                # The type-7 answer re-rendered the menu: nothing left showing, no API call.
                assert emulator.snapshot().selections == {}
                assert emulator.statistics().rest_requests == requests_before

                user = emulator.user_ids[1]
                picked = await emulator.pick_select(
                    "price", ["a"], message_id=menus["price"], user_id=user
                )
                await until_idle(bot)
                assert picked.ack_type == 7  # respond() went out as the reset ...
                followup = emulator.ephemeral_messages(user)[-1]
                assert followup["content"] == "a costs $5"  # ... and the price as a follow-up
                assert emulator.snapshot().selections == {}

                # A pick that arrives while the bot changes the menu waits for the change;
                # its copy of the menu is older than the change, so no type 7 from it: a
                # plain answer, and the manager edits from a fresh read afterwards.
                async with bot.resets.lock(menus["price"]):
                    pick = asyncio.ensure_future(
                        emulator.pick_select("price", ["a"], message_id=menus["price"])
                    )
                    await asyncio.sleep(0.2)
                    assert not pick.done()  # the answer waits for the bot's change
                    await emulator.edit_message(emulator.channel_ids[0], menus["price"], {})
                picked = await pick
                assert picked.ack_type == 4
                await until_idle(bot)
                assert emulator.snapshot().selections == {}
                stats = bot.resets.statistics()
                assert (stats.in_answer, stats.requested, stats.succeeded) == (2, 1, 1)
        finally:
            await bot.close()


async def test_reset_edit_coalesces_picks_into_one_edit_of_the_menu() -> None:
    async with Emulator(seed=4, members=5) as emulator:
        bot = emulator_bot(emulator, reset_debounce=0.5)  # the picks below land within it

        @bot.component("edit", reset="edit", ephemeral=True)
        async def edit(interaction: Interaction) -> None:
            await interaction.respond(f"picked {interaction.values[0]}")

        try:
            async with serving(emulator, bot):
                menu = await post_menu(emulator, "edit")
                for user in emulator.user_ids[:3]:
                    picked = await emulator.pick_select(
                        "edit", ["a"], message_id=menu, user_id=user
                    )
                    assert picked.ack_type == 4
                assert list(emulator.snapshot().selections) == [menu]
                await until_idle(bot)
                assert emulator.snapshot().selections == {}
                stats = bot.resets.statistics()
                assert (stats.requested, stats.succeeded, stats.coalesced) == (3, 1, 2)
                assert emulator.world.edits[menu] == 1
        finally:
            await bot.close()
