"""The latency tracker behind the adaptive `auto` defer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadybot.interactions.defer import LatencyTracker


def test_needs_enough_samples_before_predicting() -> None:
    tracker = LatencyTracker(window=10, min_samples=3, percentile=0.95)
    tracker.record(5.0)
    tracker.record(5.0)
    assert not tracker.predicts_slow(2.0)
    tracker.record(5.0)
    assert tracker.predicts_slow(2.0)


def test_window_forgets_old_slowness() -> None:
    tracker = LatencyTracker(window=5, min_samples=5, percentile=0.95)
    for _ in range(5):
        tracker.record(4.0)
    assert tracker.predicts_slow(2.0)
    for _ in range(5):
        tracker.record(0.1)
    assert not tracker.predicts_slow(2.0)
    stats = tracker.statistics(2.0)
    assert (stats.samples, stats.p95, stats.slow_predicted) == (5, 0.1, False)


def test_percentile_is_nearest_rank() -> None:
    tracker = LatencyTracker(window=100, min_samples=1, percentile=0.95)
    for value in range(1, 101):
        tracker.record(float(value))
    assert tracker.percentile(0.95) == 95.0
    assert tracker.percentile(0.5) == 50.0
    with pytest.raises(ValueError, match="percentile"):
        LatencyTracker(window=1, min_samples=1, percentile=0)


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=60))
def test_percentile_is_an_observed_value(values: list[float]) -> None:
    tracker = LatencyTracker(window=50, min_samples=1, percentile=0.95)
    for value in values:
        tracker.record(value)
    p95 = tracker.percentile(0.95)
    assert p95 in values[-50:]
