"""The rendered leaderboard, cached, and dropped whenever a result is written.

The standings change only when a result is written, and everyone asks for them: a
short TTL cache takes the reads off the database, and every result write invalidates
it, so nobody who was just told "recorded" sees the board without their result.

The race this guards against: a read that started before a write can finish after the
write's invalidation; storing its text would serve the old standings for a whole TTL.
Each read notes the generation it started in and stores its text only when no
invalidation happened in between (it still answers its own caller with what it read).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from cachetools import TTLCache

from steadybot.clock import Clock

__all__ = ["LEADERBOARD_TTL", "LeaderboardCache", "LeaderboardStatistics"]

LEADERBOARD_TTL: Final = 30.0  # seconds a rendered board is served without a write
MAX_BOARDS: Final = 16  # one per region and one for all


@dataclass(frozen=True, slots=True)
class LeaderboardStatistics:
    held: int
    hits: int
    misses: int
    invalidations: int
    discarded: int  # reads that raced a write and were not cached


class LeaderboardCache:
    """Rendered boards by key (a region, or "" for all), invalidated on writes."""

    def __init__(
        self, clock: Clock, *, ttl: float = LEADERBOARD_TTL, max_boards: int = MAX_BOARDS
    ) -> None:
        self._boards: TTLCache[str, str] = TTLCache(
            maxsize=max_boards, ttl=ttl, timer=clock.monotonic
        )
        self._generation = 0
        self._hits = 0
        self._misses = 0
        self._invalidations = 0
        self._discarded = 0

    async def get(self, key: str, render: Callable[[], Awaitable[str]]) -> str:
        """The board for ``key``: cached, or rendered now (and cached if still current)."""
        cached = self._boards.get(key)
        if cached is not None:
            self._hits += 1
            return cached
        self._misses += 1
        started_in = self._generation
        board = await render()
        if started_in == self._generation:
            self._boards[key] = board
        else:
            self._discarded += 1
        return board

    def invalidate(self) -> None:
        """A result was written: every board is old."""
        self._generation += 1
        self._invalidations += 1
        self._boards.clear()

    def statistics(self) -> LeaderboardStatistics:
        self._boards.expire()
        return LeaderboardStatistics(
            held=len(self._boards),
            hits=self._hits,
            misses=self._misses,
            invalidations=self._invalidations,
            discarded=self._discarded,
        )
