"""The bot's tracked work: every handler run and spawned task, waited for on shutdown.

Nothing the bot starts runs unowned. A handler runs either in the task that received
it (the HTTP front door's request task, :meth:`TrackedWork.add`) or in a task made
for it (:meth:`TrackedWork.run`); work a handler leaves behind (:meth:`TrackedWork.spawn`)
gets a task too. Each is kept in one set until it ends: a bare ``create_task`` can be
garbage-collected mid-way, and shutdown must know what is still running.

Shutdown (:meth:`TrackedWork.drain`) waits for the set to empty, up to a grace period
on the bot's clock; it waits again whenever new work appeared meanwhile (a handler may
spawn some during the grace), then cancels what is left and waits for the cancelled
tasks to unwind, so nothing is still running when the bot closes its clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from steadybot.clock import Clock

__all__ = ["TrackedWork"]

# The bot's logger: these are the bot's messages, wherever the code lives.
log = logging.getLogger("steadybot.bot")

T = TypeVar("T")


class TrackedWork:
    """The set of the bot's running tasks; see the module docstring."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[Any] | None) -> None:
        """Track ``task`` (the one a handler runs in) until :meth:`discard`. Two plain
        calls rather than a context manager: this runs per interaction, and a
        generator-based ``with`` costs more than the tracking itself."""
        if task is not None:
            self._tasks.add(task)

    def discard(self, task: asyncio.Task[Any] | None) -> None:
        """Stop tracking ``task`` (no-op when untracked or ``None``)."""
        if task is not None:
            self._tasks.discard(task)

    def run(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in a new task, tracked until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def spawn(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """Like :meth:`run`, for work nobody awaits: its failure is logged."""
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._spawned_done)
        return task

    def _spawned_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("spawned work failed", exc_info=task.exception())

    async def drain(self, grace: float, clock: Clock) -> None:
        """Wait up to ``grace`` seconds for every task, then cancel the rest."""
        if not self._tasks:
            return
        log.info("shutdown: waiting up to %.1fs for %d handler(s)", grace, len(self._tasks))
        timer = asyncio.ensure_future(clock.sleep(grace))
        try:
            # Again while new work appears: a handler may spawn some in the grace.
            while self._tasks and not timer.done():
                waiter = asyncio.ensure_future(asyncio.wait(set(self._tasks)))
                await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        finally:
            timer.cancel()
        unfinished = [task for task in self._tasks if not task.done()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("shutdown: cancelled %d handler(s) past the grace period", len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)
