"""Acceptance: two bot processes on one Redis; a double click routed to both runs once.

Two real bot processes (``double_click_bot.py``, uvicorn on 127.0.0.1) serve the same
application; the emulator delivers interactions to them in turn, as a load balancer
would, so each user's first click reaches one process and the second click (30 ms
later) the other (turns a, b, b, a: users alternate which process comes first). The
button's handler posts a message (the side effect) and works for half a second under
``exclusive="user"``.

- With Redis (``STEADYBOT_REDIS_URL``, a prefix of this test's own): one message per
  user, and one of the two clicks answered with the busy message.
- The control, without Redis (in-process locks only): each process lets its click
  through, and users get two messages — the duplicates this feature exists to prevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from steadybot.emulator import EmulatedInteraction, Emulator, RateLimitSettings

pytestmark = pytest.mark.services

BOT = Path(__file__).with_name("double_click_bot.py")
BUSY = "⏳ Your application is already being processed."
USERS = 20
STAGGER = 0.08  # seconds between two users' double clicks: the turns stay in order
GAP = 0.03  # seconds between a user's two clicks
START_TIMEOUT = 30.0  # real seconds for a bot process to import and listen


class BotProcess:
    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def stop(self) -> dict[str, object]:
        """Close stdin (the process's signal to stop) and read its statistics."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        out, err = await asyncio.wait_for(self.process.communicate(), timeout=15)
        lines = out.decode().strip().splitlines()
        assert self.process.returncode == 0, err.decode()[-2000:]
        stats: dict[str, object] = json.loads(lines[-1])
        return stats


@contextlib.asynccontextmanager
async def bot_processes(
    emulator: Emulator, redis_url: str, prefix: str
) -> AsyncIterator[list[BotProcess]]:
    env = {
        **os.environ,
        "STEADYBOT_APPLICATION_ID": emulator.application_id,
        "STEADYBOT_PUBLIC_KEY": emulator.public_key,
        "STEADYBOT_TOKEN": emulator.bot_token,
        "STEADYBOT_API_BASE": emulator.api_base,
        "STEADYBOT_REDIS_URL": redis_url,
        "STEADYBOT_REDIS_PREFIX": prefix,
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT),
            name,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    started: list[BotProcess] = []
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=START_TIMEOUT)
            assert line.startswith(b"URL "), line
            started.append(BotProcess(process, line.decode().split()[1]))
        yield started
    finally:
        for process in processes:
            if process.returncode is None and process.stdin is not None:
                process.stdin.close()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def double_clicks(emulator: Emulator, message_id: str) -> list[list[EmulatedInteraction]]:
    """Every user clicks twice, GAP apart; users STAGGER apart, so the deliveries go
    out in order: user 0 first, user 0 second, user 1 first, …"""

    async def click(user_id: str, at: float) -> EmulatedInteraction:
        await asyncio.sleep(at)
        return await emulator.click_button("apply", message_id=message_id, user_id=user_id)

    users = emulator.user_ids[:USERS]
    clicks = [
        asyncio.ensure_future(click(user, n * STAGGER + offset))
        for n, user in enumerate(users)
        for offset in (0.0, GAP)
    ]
    done = await asyncio.wait_for(asyncio.gather(*clicks), timeout=60)
    return [list(done[2 * n : 2 * n + 2]) for n in range(len(users))]


def answer(emulator: Emulator, interaction: EmulatedInteraction) -> str:
    if interaction.original_message_id is None:
        return ""
    message = emulator.world.find_message(interaction.original_message_id)
    return "" if message is None else str(message.get("content", ""))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shared", [True, False], ids=["redis", "control-without-redis"])
async def test_a_double_click_routed_to_two_processes_has_one_side_effect(
    shared: bool, redis: Redis, redis_url: str, namespace: str
) -> None:
    limits = RateLimitSettings(enabled=False)  # this test is about locks, not limits
    try:
        async with Emulator(seed=3, members=USERS + 5, rate_limits=limits) as emulator:
            channel = emulator.channel_ids[0]
            button = {"type": 2, "style": 1, "label": "Apply", "custom_id": "apply"}
            posted = await emulator.post_message(
                channel, {"content": "Apply!", "components": [{"type": 1, "components": [button]}]}
            )
            async with bot_processes(emulator, redis_url if shared else "", namespace) as bots:
                # Turns a, b, b, a: every user's clicks reach both processes, and the
                # first click reaches a for even users, b for odd ones.
                a, b = (bot.url for bot in bots)
                emulator.set_interactions_endpoints([a, b, b, a])
                pairs = await double_clicks(emulator, str(posted["id"]))
                stats = [await bot.stop() for bot in bots]
            messages = [m["content"] for m in emulator.messages(channel)]
        lock_keys = [key async for key in redis.scan_iter(f"{namespace}:co:lock:*")]
    finally:
        keys = [key async for key in redis.scan_iter(f"{namespace}:*")]
        if keys:
            await redis.delete(*keys)

    per_user = {
        pair[0].user_id: sum(f"<@{pair[0].user_id}>" in m for m in messages) for pair in pairs
    }
    # Each user's two clicks went to the two processes (the load balancer's turns).
    routed = {
        pair[0].user_id: {m.rsplit(" ", 1)[-1] for m in messages if f"<@{pair[0].user_id}>" in m}
        for pair in pairs
    }
    assert all(pair[0].ack_type == pair[1].ack_type == 4 for pair in pairs)  # all answered
    if not shared:
        # In-process locks only: both processes ran the handler for most users.
        duplicated = [user for user, count in per_user.items() if count > 1]
        assert len(duplicated) >= USERS // 2, per_user
        assert all(routed[user] == {"a", "b"} for user in duplicated)
        return
    assert all(count == 1 for count in per_user.values()), per_user  # one side effect each
    busy = [[answer(emulator, ix) == BUSY for ix in pair] for pair in pairs]
    assert all(sum(flags) == 1 for flags in busy), busy  # one of the two clicks was busy
    # The second click is the busy one unless a stalled machine let it overtake the first.
    assert sum(flags[1] for flags in busy) >= USERS - 2, busy
    assert sum(int(s["busy"]) for s in stats) == USERS  # type: ignore[call-overload]
    assert {s["backend"] for s in stats} == {"redis"}
    assert {"a", "b"} == set().union(*routed.values())  # both processes did work
    assert lock_keys == []  # nothing outlives its use
