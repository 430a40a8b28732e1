"""Simulated users driving a scenario against a bot through the emulator.

A :class:`Scenario` says what one user does (commands, clicks, picks, modal submits,
think times, double clicks) and which invariants must hold afterwards. The crowd starts
``users`` users spread over ``seconds`` (seeded, so a run repeats), waits until the
answers owed after defers have landed, runs the checks, and reports what the emulator
saw (:class:`~steadybot.crowd.report.CrowdReport`).
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from steadybot.crowd.report import Check, CrowdReport
from steadybot.crowd.target import CrowdTarget
from steadybot.emulator.views import Action, InteractionView, Snapshot

__all__ = ["CrowdUser", "Scenario", "run_crowd", "take_snapshot"]

SETTLE_TIMEOUT = 60.0  # real seconds to wait for deferred answers after the last user
SETTLE_POLL = 0.1


class CrowdUser:
    """One simulated member; every interaction it causes is recorded for the report."""

    def __init__(
        self,
        target: CrowdTarget,
        user_id: str,
        rng: random.Random,
        record: Callable[[InteractionView], None],
    ) -> None:
        self.target = target
        self.id = user_id
        self.rng = rng
        self._record = record
        self.interactions: list[InteractionView] = []

    async def _do(self, action: Action) -> InteractionView:
        view = await self.target.act(action)
        self.interactions.append(view)
        self._record(view)
        return view

    async def think(self, low: float, high: float) -> None:
        """Pause like a person would (real time: the bot under test runs in real time)."""
        await asyncio.sleep(self.rng.uniform(low, high))

    async def command(
        self,
        name: str,
        options: list[dict[str, object]] | None = None,
        channel_id: str | None = None,
    ) -> InteractionView:
        return await self._do(
            Action(
                kind="command",
                user_id=self.id,
                name=name,
                options=list(options or []),
                channel_id=channel_id,
            )
        )

    async def click(self, custom_id: str, message_id: str) -> InteractionView:
        return await self._do(
            Action(kind="click", user_id=self.id, custom_id=custom_id, message_id=message_id)
        )

    async def double_click(
        self, custom_id: str, message_id: str, gap: float
    ) -> list[InteractionView]:
        """Two clicks ``gap`` seconds apart, the second while the first may still run."""

        async def second() -> InteractionView:
            await asyncio.sleep(gap)
            return await self.click(custom_id, message_id)

        return list(await asyncio.gather(self.click(custom_id, message_id), second()))

    async def pick(self, custom_id: str, values: list[str], message_id: str) -> InteractionView:
        return await self._do(
            Action(
                kind="pick",
                user_id=self.id,
                custom_id=custom_id,
                values=values,
                message_id=message_id,
            )
        )

    async def submit(
        self, custom_id: str, fields: dict[str, str], channel_id: str | None = None
    ) -> InteractionView:
        return await self._do(
            Action(
                kind="modal",
                user_id=self.id,
                custom_id=custom_id,
                fields=fields,
                channel_id=channel_id,
            )
        )


class Scenario(Protocol):
    """A story the crowd plays."""

    name: str

    async def setup(self, target: CrowdTarget) -> None:
        """Prepare the world (e.g. post the message with the buttons users click)."""
        ...

    async def user(self, user: CrowdUser) -> None:
        """What one user does."""
        ...

    def checks(
        self, snapshot: Snapshot, users: Sequence[CrowdUser]
    ) -> dict[str, Check] | Awaitable[dict[str, Check]]:
        """The story's invariants, judged from the emulator's final state (and, for a
        story with a database, from what the bot stored: then ``async def``)."""
        ...


async def take_snapshot(
    target: CrowdTarget, ids: list[str] | None = None, *, full: bool = True
) -> Snapshot:
    """The target's snapshot, whether it answers at once (in-process) or over HTTP."""
    result = target.snapshot(ids, full)
    return await result if inspect.isawaitable(result) else result


async def run_crowd(
    target: CrowdTarget,
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
    await scenario.setup(target)
    sent: list[InteractionView] = []
    member_ids = target.user_ids
    crowd = [
        CrowdUser(target, member_ids[i % len(member_ids)], random.Random(rng.random()), sent.append)
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
        ids = [view.id for view in sent]
        # Polling on purpose: answers land inside the emulator, which has no event to await.
        while time.monotonic() < deadline:
            pending = await take_snapshot(target, ids, full=False)
            owed = any(view.owed for view in pending.interactions.values())
            if not owed and (bot_idle is None or bot_idle()):
                break
            await asyncio.sleep(SETTLE_POLL)
    elapsed = time.monotonic() - began
    snapshot = await take_snapshot(target, ids)
    judged = scenario.checks(snapshot, crowd)
    checks = judged if isinstance(judged, dict) else await judged
    if errors:
        checks["users ran without errors"] = Check(
            False, f"{len(errors)} user sessions raised, e.g. {errors[0]!r}"[:200]
        )
    return CrowdReport.build(
        scenario=scenario.name, users=users, seconds=elapsed, snapshot=snapshot, checks=checks
    )
