"""The emulator as a load balancer: interactions delivered to several endpoints in turn."""

from __future__ import annotations

import aiohttp
import pytest
from support import emulator_bot

from steadybot import Bot, Interaction
from steadybot.emulator import Emulator, RateLimitSettings
from steadybot.serving import serve_in_process


def bot_for(emulator: Emulator, name: str, seen: list[str]) -> Bot:
    bot = emulator_bot(emulator)

    @bot.command("who")
    async def who(interaction: Interaction) -> None:
        seen.append(name)
        await interaction.respond(name)

    return bot


@pytest.mark.timeout(30)
async def test_interactions_go_to_each_endpoint_in_turn_until_one_url_is_set() -> None:
    seen: list[str] = []
    async with Emulator(seed=1, members=3, rate_limits=RateLimitSettings(enabled=False)) as em:
        one = await serve_in_process(bot_for(em, "one", seen).asgi())
        two = await serve_in_process(bot_for(em, "two", seen).asgi())
        try:
            em.set_interactions_endpoints([one.url, two.url])
            assert em.info()["interactions_endpoint_url"] == one.url  # what Discord knows
            for _ in range(4):
                assert (await em.send_command("who")).ack_type == 4
            assert seen == ["one", "two", "one", "two"]
            em.set_interactions_endpoint(two.url)  # one URL again: no more turns
            for _ in range(2):
                await em.send_command("who")
            assert seen[4:] == ["two", "two"]
            # The control API does the same for an emulator in another process.
            async with aiohttp.ClientSession() as http:
                put = await http.put(
                    f"{em.url}/_emulator/endpoint", json={"urls": [two.url, one.url]}
                )
                assert put.status == 204
                bad = await http.put(f"{em.url}/_emulator/endpoint", json={"urls": []})
                assert bad.status == 400
            for _ in range(2):
                await em.send_command("who")
            assert seen[6:] == ["two", "one"]
            with pytest.raises(ValueError, match="at least one"):
                em.set_interactions_endpoints([])
        finally:
            await one.stop()
            await two.stop()
