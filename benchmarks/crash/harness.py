"""The kill -9 crash run: a crowd buys, a bot process is SIGKILLed and restarted.

:func:`run_crash` runs the emulator in this process and :mod:`benchmarks.crash.bot`
as a subprocess on a fresh database (a SQLite file or a PostgreSQL schema). A crowd of
concurrent users sends ``/buy`` continuously; at seeded random moments the bot is
killed with SIGKILL and started again on the same database and port. When the crowd
is done the last incarnation drains its outbox and its reservations expire; then the
run checks, from the database and from the emulator's side:

- ``reconcile`` reports no discrepancy;
- every purchase whose transaction committed (a posted charge) has exactly one
  outbox item, delivered, and the user sees its answer exactly once (the original
  message edited to it, or one fallback message; no follow-up copies);
- no answer exists for a purchase that did not commit, and no charge either (its
  reservation expired);
- nothing was dead-lettered before its expiry.

Used by ``tests/services/test_outbox_crash.py`` (small) and ``benchmarks/crash/run.py``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.crash.bot import PRICE, answer_text
from steadybot.credits import LEDGER_MIGRATIONS, Ledger
from steadybot.emulator import Emulator
from steadybot.emulator.faults import FaultRule
from steadybot.emulator.ratelimits import RateLimitSettings
from steadybot.outbox import OUTBOX_MIGRATIONS
from steadybot.storage import open_database

__all__ = ["CrashResult", "run_crash"]

ROOT = Path(__file__).resolve().parents[2]
DEPOSIT = 10**9
READY_TIMEOUT = 30.0  # seconds a bot incarnation may take to start


@dataclass
class CrashResult:
    backend: str
    seed: int
    interactions: int = 0  # sent by the crowd
    acknowledged: int = 0  # the bot deferred in time (type 5)
    failed_deliveries: int = 0  # the bot was down or killed mid-request
    commits: int = 0  # purchases whose charge + answer committed
    kills: int = 0
    restarts: int = 0
    reservations_expired: int = 0  # reserved, killed before the commit: released
    delivered: int = 0
    delivered_via: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    in_doubt: int = 0  # items a killed relay left in SENDING, found by the next one
    in_doubt_resolved: dict[str, int] = field(default_factory=dict)
    idempotent_redos: int = 0  # originals edited more than once (same content)
    duplicates: int = 0  # answers the user sees more than once (must be 0)
    lost: int = 0  # committed answers not delivered (must be 0)
    orphan_answers: int = 0  # answers without a commit (must be 0)
    charged_without_answer: int = 0  # must be 0
    discrepancies: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.discrepancies
            and self.duplicates == 0
            and self.lost == 0
            and self.orphan_answers == 0
            and self.charged_without_answer == 0
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _BotProcess:
    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self.process: asyncio.subprocess.Process | None = None
        self.incarnation = 0

    async def start(self) -> None:
        self.incarnation += 1
        config = {**self._config, "seed": self._config["seed"] * 1000 + self.incarnation}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.crash.bot",
            json.dumps(config),
            cwd=str(ROOT),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._config.get("stderr", asyncio.subprocess.DEVNULL),
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT)
        if line.strip() != b"ready":
            raise RuntimeError(f"the bot did not start: {line!r}")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                await self.kill()


async def run_crash(
    database_url: str,
    *,
    backend: str,
    interactions: int = 100,
    kills: int = 3,
    users: int = 20,
    concurrency: int = 8,
    seed: int | None = None,
    kill_after: tuple[float, float] = (0.4, 1.2),
    lease: float = 2.0,
    reservation_timeout: float = 2.0,
    drain_timeout: float = 60.0,
    webhook_latency: tuple[float, float] = (0.05, 0.4),
    think: tuple[float, float] = (0.05, 0.25),
) -> CrashResult:
    """One crash run (see the module docstring); prints its seed first."""
    seed = random.randrange(1 << 30) if seed is None else seed
    print(f"crash run: backend={backend} seed={seed}", flush=True)
    rng = random.Random(seed)
    result = CrashResult(backend=backend, seed=seed)
    started = time.monotonic()
    database = await open_database(
        database_url, migrations=[*LEDGER_MIGRATIONS, *OUTBOX_MIGRATIONS]
    )
    try:
        async with Emulator(
            seed=seed % 1000, members=users, rate_limits=RateLimitSettings(enabled=False)
        ) as emulator:
            # Slow answers to half the edits of @original: a kill then often lands
            # while an item is SENDING, which the next incarnation finds in doubt.
            emulator.faults.set_rules(
                [
                    FaultRule(
                        route="/webhooks/*",
                        method="PATCH",
                        probability=0.5,
                        latency=webhook_latency,
                        name="slow-edit",
                    )
                ]
            )
            ledger = Ledger(database)
            for user_id in emulator.user_ids:
                await ledger.open_account(f"user:{user_id}")
                await ledger.deposit(f"user:{user_id}", DEPOSIT, key=f"deposit:{user_id}")
            port = _free_port()
            emulator.set_interactions_endpoint(f"http://127.0.0.1:{port}/interactions")
            bot = _BotProcess(
                {
                    "database_url": database_url,
                    "api_base": emulator.api_base,
                    "application_id": emulator.application_id,
                    "public_key": emulator.public_key,
                    "token": emulator.bot_token,
                    "port": port,
                    "lease": lease,
                    "reservation_timeout": reservation_timeout,
                    "seed": seed,
                }
            )
            await bot.start()
            try:
                await _crowd_and_killer(
                    emulator, bot, result, rng, interactions, kills, concurrency, kill_after, think
                )
                await _drain(database, drain_timeout, reservation_timeout)
            finally:
                await bot.stop()
            await _check(database, ledger, emulator, result)
    finally:
        await database.close()
    result.elapsed = round(time.monotonic() - started, 2)
    return result


async def _crowd_and_killer(
    emulator: Emulator,
    bot: _BotProcess,
    result: CrashResult,
    rng: random.Random,
    interactions: int,
    kills: int,
    concurrency: int,
    kill_after: tuple[float, float],
    think: tuple[float, float],
) -> None:
    sent = 0
    users = emulator.user_ids
    crowd_rng = random.Random(rng.random())

    async def user() -> None:
        nonlocal sent
        while sent < interactions:
            sent += 1
            interaction = await emulator.send_command("buy", user_id=crowd_rng.choice(users))
            if interaction.failed:  # the bot is down: users try again a little later
                await asyncio.sleep(0.2)
            await asyncio.sleep(crowd_rng.uniform(*think))

    async def killer() -> None:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(*kill_after))
            await bot.kill()
            result.kills += 1
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # down for a moment
            await bot.start()
            result.restarts += 1

    crowd = [asyncio.create_task(user()) for _ in range(concurrency)]
    kill_task = asyncio.create_task(killer())
    try:
        await asyncio.gather(*crowd)
        await kill_task  # every kill happens, even if the crowd finished first
    finally:
        for task in (*crowd, kill_task):
            task.cancel()
        await asyncio.gather(*crowd, kill_task, return_exceptions=True)


async def _drain(database: Any, timeout: float, reservation_timeout: float) -> None:
    """Wait for the outbox to empty and every pending reservation to be resolved."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = await database.fetchval(
            "SELECT COUNT(*) FROM outbox_items WHERE state IN ('pending', 'sending')"
        )
        held = await database.fetchval(
            "SELECT COUNT(*) FROM credit_reservations WHERE state = 'pending'"
        )
        if int(active) == 0 and int(held) == 0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the outbox or the reservations did not drain in {timeout}s")


async def _check(database: Any, ledger: Ledger, emulator: Emulator, result: CrashResult) -> None:
    report = await ledger.reconcile()
    result.discrepancies = [f"{d.kind} {d.account_id} {d.detail}" for d in report.discrepancies]
    posted = {
        row["key"].removeprefix("post:")
        for row in await database.fetch("SELECT key FROM credit_requests WHERE key LIKE 'post:%'")
    }
    states = collections.Counter(
        row["state"] for row in await database.fetch("SELECT state FROM credit_reservations")
    )
    result.reservations_expired = states["expired"]
    charged = await database.fetchval(
        "SELECT COALESCE(SUM(posted_amount), 0) FROM credit_reservations WHERE state = 'posted'"
    )
    items = {
        row["interaction_id"]: row for row in await database.fetch("SELECT * FROM outbox_items")
    }
    result.commits = len(items)
    result.charged_without_answer = len(posted - set(items))
    if int(charged) != PRICE * len(posted):
        result.discrepancies.append(f"charged {charged} for {len(posted)} posts")
    via: collections.Counter[str] = collections.Counter()
    resolved: collections.Counter[str] = collections.Counter()
    for row in items.values():
        if row["state"] == "delivered":
            result.delivered += 1
            via[row["delivered_via"]] += 1
        elif row["state"] == "dead":
            result.dead_lettered += 1
            if row["ended_at"] < row["expires_at"]:
                result.discrepancies.append(f"item {row['id']} dead before expiry")
        if row["in_doubt"]:
            result.in_doubt += int(row["in_doubt"])
            resolved[row["resolution"] or "?"] += 1
    result.delivered_via = dict(via)
    result.in_doubt_resolved = dict(resolved)
    _check_seen(emulator, items, result)


def _check_seen(emulator: Emulator, items: dict[str, Any], result: CrashResult) -> None:
    """What the users see: each committed answer once, no answer without a commit."""
    result.interactions = len(emulator.interactions)
    all_messages = [m for c in emulator.channel_ids for m in emulator.messages(c)]
    for interaction in emulator.interactions:
        if interaction.ack_type is not None:
            result.acknowledged += 1
        if interaction.failed:
            result.failed_deliveries += 1
        text = answer_text(interaction.id)
        seen = sum(1 for m in all_messages if m["content"] == text)
        seen += sum(
            1 for m in emulator.ephemeral_messages(interaction.user_id) if m["content"] == text
        )
        if interaction.followup_ids:
            result.duplicates += len(interaction.followup_ids)
        if interaction.id in items:
            if seen == 0 or items[interaction.id]["state"] != "delivered":
                result.lost += 1
            result.duplicates += max(0, seen - 1)
            original = interaction.original_message_id
            if original is not None and emulator.world.edits.get(original, 0) > 1:
                result.idempotent_redos += 1
        elif seen:
            result.orphan_answers += 1
