"""When to defer: the per-handler defer policy and the latency tracker behind ``auto``.

Theory: Discord drops an interaction whose initial response does not arrive within
3 s of the event. Answering directly (type 4/7 in the HTTP reply) is the best user
experience, deferring (type 5/6) is the safe one. ``auto`` gets both: the handler
runs at once, and if it has not answered by ``defer_after`` seconds *after the
request arrived* the runtime defers for it. A handler whose recent answers were slow
(its rolling p95 exceeds ``defer_after``) is deferred at once instead, so the user sees
"thinking…" immediately rather than after a pointless wait. The latency recorded is
the time from arrival to the handler's first answer (or its end), measured even when it
was deferred, so a handler that becomes fast again stops being deferred early.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

__all__ = ["DeferMode", "LatencyStatistics", "LatencyTracker"]


class DeferMode(enum.Enum):
    """How a handler's interactions are deferred."""

    AUTO = "auto"  # answer directly if fast; defer at `defer_after`, or at once if slow lately
    NOW = "now"  # defer as soon as the interaction arrives
    NEVER = "never"  # the handler answers itself (modals, autocomplete); missing 3 s fails


@dataclass(frozen=True, slots=True)
class LatencyStatistics:
    """A snapshot of one handler's recent answer latencies, in seconds."""

    samples: int
    p50: float | None
    p95: float | None
    slow_predicted: bool


class LatencyTracker:
    """Rolling window of a handler's answer latencies; predicts slow handlers.

    Not thread-safe; used from one event loop.
    """

    def __init__(self, *, window: int, min_samples: int, percentile: float) -> None:
        if not 0 < percentile <= 1:
            raise ValueError(f"percentile must be in (0, 1], got {percentile}")
        self._samples: deque[float] = deque(maxlen=window)
        self._min_samples = min_samples
        self._percentile = percentile
        # On the hot path only "is the percentile above the budget?" is asked, always with
        # the same budget; counting the samples above it answers in O(1) per request.
        self._budget: float | None = None
        self._above = 0

    def record(self, seconds: float) -> None:
        """Add one observed latency."""
        value = max(0.0, seconds)
        samples = self._samples
        if self._budget is not None:
            if len(samples) == samples.maxlen and samples[0] > self._budget:
                self._above -= 1
            if value > self._budget:
                self._above += 1
        samples.append(value)

    def percentile(self, fraction: float) -> float | None:
        """The nearest-rank percentile of the window, or None when it is empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]

    def predicts_slow(self, budget: float) -> bool:
        """Whether recent latency says this handler will not answer within ``budget``."""
        count = len(self._samples)
        if count < self._min_samples:
            return False
        if budget != self._budget:
            self._budget = budget
            self._above = sum(1 for value in self._samples if value > budget)
        # The rank-th smallest sample exceeds the budget iff fewer than rank are within it.
        rank = max(1, math.ceil(self._percentile * count))
        return count - self._above < rank

    def statistics(self, budget: float) -> LatencyStatistics:
        """A frozen snapshot for metrics and health."""
        return LatencyStatistics(
            samples=len(self._samples),
            p50=self.percentile(0.5),
            p95=self.percentile(0.95),
            slow_predicted=self.predicts_slow(budget),
        )
