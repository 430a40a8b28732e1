"""The latency tracker behind the adaptive `auto` defer."""

from __future__ import annotations

import math

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


@given(
    samples=st.lists(st.floats(min_value=-1, max_value=10, allow_nan=False), max_size=60),
    fraction=st.floats(min_value=0.01, max_value=1.0),
)
def test_percentile_matches_a_sort_of_the_window(samples: list[float], fraction: float) -> None:
    tracker = LatencyTracker(window=7, min_samples=1, percentile=0.95)
    for value in samples:
        tracker.record(value)
    window = sorted(max(0.0, v) for v in samples[-7:])
    if not window:
        assert tracker.percentile(fraction) is None
        return
    rank = max(1, math.ceil(fraction * len(window)))
    assert tracker.percentile(fraction) == window[rank - 1]
    assert tracker.predicts_slow(1.0) == (window[max(1, math.ceil(0.95 * len(window))) - 1] > 1.0)
