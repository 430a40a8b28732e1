"""``steadybot serve examples.hello:bot`` as a real process, driven through the emulator.

The bot process gets its settings from the environment exactly as a user would set
them, with ``STEADYBOT_API_BASE`` pointing at the emulator; every interaction travels
over sockets, signed, and the emulator judges the answers by Discord's rules.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from steadybot.emulator import Emulator, InteractionOutcome

ROOT = Path(__file__).resolve().parents[2]
DEFER_AFTER = 2.0  # the default setting; the acceptance bound is defer_after + 50 ms
SLACK = 0.05
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"steadybot serve exited with {process.returncode}")
            try:
                async with session.get(url) as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("steadybot serve did not become healthy")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Emulator, asyncio.subprocess.Process]]:
    log_path = tmp_path / "serve.log"
    async with Emulator(members=10) as emulator:
        port = free_port()
        env = {
            **os.environ,
            "STEADYBOT_APPLICATION_ID": emulator.application_id,
            "STEADYBOT_PUBLIC_KEY": emulator.public_key,
            "STEADYBOT_TOKEN": emulator.bot_token,
            "STEADYBOT_API_BASE": emulator.api_base,
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "steadybot", "serve", "examples.hello:bot"]
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command,
                "--port",
                str(port),
                "--log-level",
                "warning",
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_healthy(f"http://127.0.0.1:{port}/health", process)
            emulator.set_interactions_endpoint(f"http://127.0.0.1:{port}/interactions")
            yield emulator, process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        output = log_path.read_text(errors="replace")
        assert "Traceback" not in output, output
        assert emulator.bot_token not in output, "the bot token leaked into the bot's output"


async def test_ping_is_answered_in_the_http_reply(
    served: tuple[Emulator, asyncio.subprocess.Process],
) -> None:
    emulator, _ = served
    ping = await emulator.send_command("ping")
    assert ping.outcome is InteractionOutcome.ACKNOWLEDGED
    assert (ping.ack_type, ping.ack_via) == (4, "http")
    original = emulator.message(ping.channel_id, ping.original_message_id or "")
    assert original is not None
    assert original["content"] == "Pong! 🏓"


async def test_slow_is_deferred_in_time_then_the_original_is_edited(
    served: tuple[Emulator, asyncio.subprocess.Process],
) -> None:
    emulator, _ = served
    slow = await emulator.send_command("slow")
    assert (slow.ack_type, slow.ack_via) == (5, "http")
    assert slow.ack_latency is not None
    print(f"/slow deferred after {slow.ack_latency * 1000:.1f} ms")
    assert DEFER_AFTER - SLACK <= slow.ack_latency <= DEFER_AFTER + SLACK, slow.ack_latency
    message_id = slow.original_message_id or ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = emulator.message(slow.channel_id, message_id)
        if message is not None and message["content"]:
            break
        await asyncio.sleep(0.05)
    assert message is not None
    assert message["content"] == "Done after 5 s of work."
    assert message["flags"] & 128 == 0  # no longer "thinking…"
    stats = emulator.statistics()
    assert (stats.failed, stats.double_acknowledged) == (0, 0)


async def test_bad_signature_is_refused_and_serve_stops_cleanly(
    served: tuple[Emulator, asyncio.subprocess.Process],
) -> None:
    emulator, process = served
    body = b'{"type": 1, "id": "1", "application_id": "1", "token": "t", "version": 1}'
    headers = emulator.sign(body)
    headers["X-Signature-Ed25519"] = "00" * 64
    status, _ = await emulator.post_signed(body, headers=headers)
    assert status == 401
    status, reply = await emulator.post_signed(body)
    assert (status, reply) == (200, b'{"type":1}')
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 15) == 0
