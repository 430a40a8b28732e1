"""Simulated users driving a scenario against a bot through the emulator.

A :class:`Scenario` says what one user does (commands, clicks, picks, modal submits,
think times, double clicks) and which invariants must hold afterwards. The crowd starts
``users`` users spread over ``seconds`` (seeded, so a run repeats), waits until the
answers owed after defers have landed, runs the checks, and reports what the emulator
saw (:class:`~steadybot.crowd.report.CrowdReport`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from steadybot.constants import LOADING_FLAG
from steadybot.crowd.report import Check, CrowdReport
from steadybot.emulator import EmulatedInteraction, Emulator, InteractionOutcome

__all__ = ["CrowdUser", "Scenario", "run_crowd"]

SETTLE_TIMEOUT = 60.0  # real seconds to wait for deferred answers after the last user
SETTLE_POLL = 0.1


class CrowdUser:
    """One simulated member; every interaction it causes is recorded for the report."""

    def __init__(
        self,
        emulator: Emulator,
        user_id: str,
        rng: random.Random,
        record: Callable[[EmulatedInteraction], None],
    ) -> None:
        self.emulator = emulator
        self.id = user_id
        self.rng = rng
        self._record = record
        self.interactions: list[EmulatedInteraction] = []

    def _keep(self, interaction: EmulatedInteraction) -> EmulatedInteraction:
        self.interactions.append(interaction)
        self._record(interaction)
        return interaction

    async def think(self, low: float, high: float) -> None:
        """Pause like a person would (real time: the bot under test runs in real time)."""
        await asyncio.sleep(self.rng.uniform(low, high))

    async def command(
        self,
        name: str,
        options: list[dict[str, object]] | None = None,
        channel_id: str | None = None,
    ) -> EmulatedInteraction:
        return self._keep(
            await self.emulator.send_command(
                name, user_id=self.id, channel_id=channel_id, options=options
            )
        )

    async def click(self, custom_id: str, message_id: str) -> EmulatedInteraction:
        return self._keep(
            await self.emulator.click_button(custom_id, message_id=message_id, user_id=self.id)
        )

    async def double_click(
        self, custom_id: str, message_id: str, gap: float
    ) -> list[EmulatedInteraction]:
        """Two clicks ``gap`` seconds apart, the second while the first may still run."""

        async def second() -> EmulatedInteraction:
            await asyncio.sleep(gap)
            return await self.click(custom_id, message_id)

        return list(await asyncio.gather(self.click(custom_id, message_id), second()))

    async def pick(self, custom_id: str, values: list[str], message_id: str) -> EmulatedInteraction:
        return self._keep(
            await self.emulator.pick_select(
                custom_id, values, message_id=message_id, user_id=self.id
            )
        )

    async def submit(
        self, custom_id: str, fields: dict[str, str], channel_id: str | None = None
    ) -> EmulatedInteraction:
        return self._keep(
            await self.emulator.submit_modal(
                custom_id, fields, user_id=self.id, channel_id=channel_id
            )
        )


class Scenario(Protocol):
    """A story the crowd plays."""

    name: str

    async def setup(self, emulator: Emulator) -> None:
        """Prepare the world (e.g. post the message with the buttons users click)."""
        ...

    async def user(self, user: CrowdUser) -> None:
        """What one user does."""
        ...

    def checks(self, emulator: Emulator, users: Sequence[CrowdUser]) -> dict[str, Check]:
        """The story's invariants, judged from what the emulator holds."""
        ...


def _owed(emulator: Emulator, interaction: EmulatedInteraction) -> bool:
    """Whether a deferred answer is still owed (the "thinking…" message is showing)."""
    if interaction.ack_type != 5 or interaction.outcome is not InteractionOutcome.ACKNOWLEDGED:
        return False
    if interaction.expired_calls:
        return False
    message = emulator.ledger.webhook_message_or_none(interaction, "@original")
    return message is not None and bool(message["flags"] & LOADING_FLAG)


async def run_crowd(
    emulator: Emulator,
    scenario: Scenario,
    *,
    users: int,
    seconds: float,
    seed: int = 0,
    console: Console | None = None,
    settle_timeout: float = SETTLE_TIMEOUT,
    bot_idle: Callable[[], bool] | None = None,
) -> CrowdReport:
    """Play ``scenario`` with ``users`` users arriving over ``seconds``; report.

    After the last user, the crowd waits (up to ``settle_timeout``) until no deferred
    answer is still showing "thinking…" and, when ``bot_idle`` is given (e.g.
    ``lambda: bot.in_flight == 0``), until the bot has finished its work, so the
    checks judge final states.
    """
    if users < 1 or seconds < 0:
        raise ValueError("users must be >= 1 and seconds >= 0")
    rng = random.Random(seed)
    await scenario.setup(emulator)
    sent: list[EmulatedInteraction] = []
    member_ids = emulator.user_ids
    crowd = [
        CrowdUser(
            emulator, member_ids[i % len(member_ids)], random.Random(rng.random()), sent.append
        )
        for i in range(users)
    ]
    starts = sorted(rng.uniform(0, seconds) for _ in crowd)
    began = time.monotonic()
    out = console or Console(stderr=True)
    columns = (
        TextColumn(f"[bold]{scenario.name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("users · {task.fields[interactions]} interactions"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("users", total=users, interactions=0)

        async def play(user: CrowdUser, start: float) -> None:
            await asyncio.sleep(max(0.0, began + start - time.monotonic()))
            try:
                await scenario.user(user)
            finally:
                progress.update(task, advance=1, interactions=len(sent))

        results = await asyncio.gather(
            *(play(user, start) for user, start in zip(crowd, starts, strict=True)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        deadline = time.monotonic() + settle_timeout
        # Polling on purpose: answers land inside the emulator, which has no event to await.
        while time.monotonic() < deadline and (  # noqa: ASYNC110
            any(_owed(emulator, i) for i in sent) or (bot_idle is not None and not bot_idle())
        ):
            await asyncio.sleep(SETTLE_POLL)
    elapsed = time.monotonic() - began
    checks = scenario.checks(emulator, crowd)
    if errors:
        checks["users ran without errors"] = Check(
            False, f"{len(errors)} user sessions raised, e.g. {errors[0]!r}"[:200]
        )
    return CrowdReport.build(
        scenario=scenario.name,
        users=users,
        seconds=elapsed,
        emulator=emulator,
        interactions=sent,
        checks=checks,
    )
