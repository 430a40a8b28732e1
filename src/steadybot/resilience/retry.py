"""Retry policy: how many attempts, and how long to wait between them.

Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff and
Jitter"): attempt *n* waits a uniform random time in ``[0, min(cap, base * 2**n))``.
Jitter spreads retries of many clients so they do not hit a recovering server in step.
The random source is injected, so tests are deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; ``base``/``cap`` are seconds."""

    max_attempts: int = 5
    base: float = 0.25
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= 0 or self.cap <= 0:
            raise ValueError("base and cap must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.rest_max_attempts,
            base=settings.rest_backoff_base,
            cap=settings.rest_backoff_cap,
        )

    def ceiling(self, attempt: int) -> float:
        """The largest wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 62))

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter wait after failed attempt number ``attempt`` (0-based)."""
        return rng.uniform(0, self.ceiling(attempt))

    def can_retry(self, attempt: int) -> bool:
        """Whether another attempt may follow attempt number ``attempt`` (0-based)."""
        return attempt + 1 < self.max_attempts
