"""The bot the crash test kills: reserve, work, then post + enqueue in ONE transaction.

Usage: ``python -m benchmarks.crash.bot CONFIG_JSON`` (database_url, api_base,
application_id, public_key, token, port, lease, reservation_timeout, seed). Prints
``ready`` once it serves. The ``/buy`` handler defers at once, then:

1. ``ledger.reserve`` holds the price (its own transaction, idempotent by interaction);
2. "work" (a short random sleep: the model call of the companion story);
3. one transaction: ``ledger.post(conn=...)`` charges and ``outbox.edit_original``
   records the answer ("thinking…" becomes "charged ...").

A SIGKILL anywhere leaves either a pending reservation (it expires: the sweeper) or
a committed charge with its committed answer, which the relay of the next incarnation
delivers (resolving what the dead one left in doubt).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
from typing import Any, Final

import uvicorn

from steadybot import Bot
from steadybot.config import Settings
from steadybot.credits import LEDGER_MIGRATIONS, Ledger
from steadybot.interactions.context import Interaction
from steadybot.outbox import OUTBOX_MIGRATIONS, Outbox, OutboxRelay, OutboxSettings
from steadybot.storage import Connection, open_database

PRICE: Final = 5


def answer_text(interaction_id: str) -> str:
    """What the user must see, exactly once, for a committed purchase."""
    return f"charged {PRICE} credits for {interaction_id}"


async def main(config: dict[str, Any]) -> None:
    rng = random.Random(config["seed"])
    settings = Settings(
        application_id=config["application_id"],
        public_key=config["public_key"],
        token=config["token"],
        api_base=config["api_base"],
        database_url=config["database_url"],
        watchdog_enabled=False,
        outbox_lease=config["lease"],
        outbox_poll_interval=0.2,
        credits_sweep_interval=0.5,
    )
    database = await open_database(
        settings=settings, migrations=[*LEDGER_MIGRATIONS, *OUTBOX_MIGRATIONS]
    )
    ledger = Ledger.from_settings(database, settings)
    outbox = Outbox(database, settings=OutboxSettings.from_settings(settings))
    bot = Bot(settings)
    relay = OutboxRelay(outbox, bot.rest)

    @bot.command("buy", defer="now")
    async def buy(interaction: Interaction) -> None:
        iid = interaction.id
        reservation = await ledger.reserve(
            f"user:{interaction.user_id}",
            PRICE,
            timeout=config["reservation_timeout"],
            key=f"reserve:{iid}",
        )
        await asyncio.sleep(rng.uniform(0.0, 0.05))  # the work being paid for

        async def charge_and_answer(conn: Connection) -> None:
            await ledger.post(reservation.id, key=f"post:{iid}", conn=conn)
            await outbox.edit_original(conn, interaction, answer_text(iid))

        await database.run_transaction(charge_and_answer)

    @bot.on_start
    async def start() -> None:
        await ledger.start()
        await relay.start()

    @bot.on_close
    async def close() -> None:
        await relay.close()
        await ledger.close()
        await database.close()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", config["port"]))
    server = uvicorn.Server(
        uvicorn.Config(bot.asgi(), log_level="error", access_log=False, lifespan="on")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
