"""Throttled progress updates while long work runs.

Theory: a handler doing 2-4 s (or 2 minutes) of work should show the user where it
is, but every edit is a REST call against a rate-limited route. The reporter keeps only
the latest text and writes it at most once per ``interval``: the first update goes out
at once, later ones are coalesced into one write when the interval has passed. Writes
run in one background task, so ``update()`` never blocks the handler's work on a REST
round trip. The responder closes the reporter (under its lock) when the final answer
is sent, so a late progress text can never overwrite the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from steadybot.clock import Clock

__all__ = ["ProgressReporter"]

log = logging.getLogger("steadybot.progress")


class ProgressReporter:
    """Coalesces progress texts into at most one edit per ``interval`` seconds."""

    def __init__(
        self, write: Callable[[str], Awaitable[None]], *, clock: Clock, interval: float
    ) -> None:
        self._write = write
        self._clock = clock
        self._interval = interval
        self._latest: str | None = None
        self._last_written: float | None = None
        self._pump: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the reporter stopped (final answer sent, or handler finished)."""
        return self._closed

    async def update(self, text: str) -> None:
        """Show ``text`` as the current progress (coalesced, written in the background)."""
        if self._closed:
            return
        self._latest = text
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="steadybot-progress")
        await asyncio.sleep(0)  # let the pump write an immediate update before work resumes

    def close(self) -> None:
        """Stop; a pending text is dropped (the final answer supersedes it)."""
        self._closed = True
        self._latest = None
        if self._pump is not None:
            self._pump.cancel()

    async def __aenter__(self) -> ProgressReporter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Leaving the block does not close: the final answer (or the runtime) does.
        return None

    async def _run(self) -> None:
        assert self._wake is not None
        with contextlib.suppress(asyncio.CancelledError):
            while not self._closed:
                await self._wake.wait()
                self._wake.clear()
                if self._last_written is not None:
                    wait = self._last_written + self._interval - self._clock.monotonic()
                    if wait > 0:
                        await self._clock.sleep(wait)
                text, self._latest = self._latest, None
                if text is None or self._closed:
                    continue
                self._last_written = self._clock.monotonic()
                try:
                    await self._write(text)
                except Exception:  # progress is best effort; the answer is what matters
                    log.exception("progress write failed")
