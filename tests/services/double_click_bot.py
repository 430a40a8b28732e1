"""One bot process of test_double_click_two_processes.py.

Usage: ``python double_click_bot.py NAME``, configured by ``STEADYBOT_*`` variables like
any bot (with or without ``STEADYBOT_REDIS_URL``). Serves the bot with uvicorn on a free
port of 127.0.0.1, prints ``URL <interactions url>``, serves until stdin closes, then
prints its guard statistics as JSON and exits.

The "apply" button's handler has a side effect through Discord (a message in the
channel) and takes about half a second, under ``exclusive="user"``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from steadybot import Bot, Interaction
from steadybot.serving import serve_in_process

BUSY = "⏳ Your application is already being processed."
WORK_SECONDS = 0.5

NAME = sys.argv[1] if len(sys.argv) > 1 else "bot"
bot = Bot()


@bot.component("apply", ephemeral=True, exclusive="user", busy=BUSY)
async def apply(interaction: Interaction) -> None:
    channel_id = interaction.channel_id or ""
    await bot.rest.create_message(
        channel_id, {"content": f"application from <@{interaction.user_id}> via {NAME}"}
    )
    await bot.clock.sleep(WORK_SECONDS)
    await interaction.respond("✅ Application received", ephemeral=True)


async def main() -> None:
    served = await serve_in_process(bot.asgi())
    print(f"URL {served.url}", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        stats = bot.guards.statistics()
        print(json.dumps({"name": NAME, "busy": stats.busy, "backend": stats.backend}), flush=True)
    finally:
        await served.stop()


if __name__ == "__main__":
    asyncio.run(main())
