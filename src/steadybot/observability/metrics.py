"""Prometheus metrics of one bot, read from its components when scraped.

Every bot has its own :class:`prometheus_client.CollectorRegistry` (no process-global
registry): two bots in one process, or a test next to a served bot, never mix. The
hot path does not touch Prometheus objects: components keep their plain counters
(runtime statistics, per-handler outcome counts and bucket counts, REST statistics,
reset-manager statistics, watchdog lag) and each registers a *collector* that turns
them into metric families at scrape time. A component with metrics of its own
registers its collector with :meth:`BotMetrics.register`.

Histograms are kept as fixed bucket counts (:class:`Buckets`): one bisect and one
increment per observation. Time to the initial response has buckets dense around the
0-3 s that Discord allows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from steadybot.bot import Bot

__all__ = [
    "DURATION_BUCKETS",
    "INITIAL_RESPONSE_BUCKETS",
    "BotMetrics",
    "Buckets",
    "HandlerMetrics",
]

INITIAL_RESPONSE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 5.0
)  # fmt: skip
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Buckets:
    """Cumulative-on-export histogram counts: one bisect and one increment per value."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class HandlerMetrics:
    """One handler's outcome counts and latency histograms."""

    __slots__ = ("duration", "failures", "initial_response", "outcomes")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.failures: dict[str, int] = {}  # by failure kind (resilience/taxonomy.py)
        self.initial_response = Buckets(INITIAL_RESPONSE_BUCKETS)
        self.duration = Buckets(DURATION_BUCKETS)

    def fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def record(self, outcome: str, initial_response: float | None, duration: float) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if initial_response is not None:
            self.initial_response.observe(initial_response)
        self.duration.observe(duration)


class _FunctionCollector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class BotMetrics:
    """The bot's registry: built-in collectors plus whatever components register."""

    def __init__(self, bot: Bot) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._bot = bot
        self.register(self._runtime)
        self.register(self._handlers)
        self.register(self._rest)

    def register(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add a collector: a function returning metric families, called per scrape."""
        self.registry.register(_FunctionCollector(collect))

    def exposition(self) -> bytes:
        """The text exposition format (``GET /metrics``)."""
        return generate_latest(self.registry)

    # --- built-in collectors ----------------------------------------------------------

    def _runtime(self) -> Iterator[Metric]:
        stats = self._bot.statistics()
        defers = CounterMetricFamily(
            "steadybot_defers", "Initial responses that were defers, by kind.", labels=["kind"]
        )
        defers.add_metric(["auto"], stats.deferred_automatically)
        defers.add_metric(["early"], stats.deferred_early)
        defers.add_metric(["explicit"], stats.deferred_explicitly)
        yield defers
        followups = CounterMetricFamily(
            "steadybot_followups",
            "Answers after the initial response, by outcome.",
            labels=["outcome"],
        )
        followups.add_metric(["delivered"], stats.followups_delivered)
        followups.add_metric(["failed"], stats.followups_failed)
        followups.add_metric(["expired"], stats.token_expired)
        followups.add_metric(["fallback"], stats.fallbacks_delivered)
        followups.add_metric(["undeliverable"], stats.undeliverable)
        yield followups
        yield CounterMetricFamily(
            "steadybot_missed_deadlines",
            "Interactions with no initial response within 3 s (users saw a failure).",
            value=stats.missed_deadline,
        )
        yield CounterMetricFamily(
            "steadybot_unknown_routes",
            "Interactions no handler matched.",
            value=stats.unknown_routes,
        )
        yield GaugeMetricFamily(
            "steadybot_in_flight",
            "Handler runs and spawned work not finished.",
            value=self._bot.in_flight,
        )

    def _handlers(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "steadybot_interactions",
            "Interactions by handler and outcome.",
            labels=["handler", "outcome"],
        )
        initial = HistogramMetricFamily(
            "steadybot_initial_response_seconds",
            "Time from the request's arrival to the initial response, by handler.",
            labels=["handler"],
        )
        duration = HistogramMetricFamily(
            "steadybot_handler_duration_seconds",
            "Handler run time, by handler.",
            labels=["handler"],
        )
        failures = CounterMetricFamily(
            "steadybot_handler_failures",
            "Handler failures by handler and kind (critical, feature, transient, non_critical).",
            labels=["handler", "kind"],
        )
        for spec in self._bot.handler_specs():
            metrics = spec.metrics
            for outcome, count in metrics.outcomes.items():
                outcomes.add_metric([spec.name, outcome], count)
            for kind, count in metrics.failures.items():
                failures.add_metric([spec.name, kind], count)
            for family, buckets in (
                (initial, metrics.initial_response),
                (duration, metrics.duration),
            ):
                family.add_metric([spec.name], buckets.cumulative(), buckets.sum)
        yield outcomes
        yield failures
        yield initial
        yield duration

    def _rest(self) -> Iterator[Metric]:
        rest = self._bot.rest
        stats = rest.statistics()
        requests = CounterMetricFamily(
            "steadybot_rest_requests",
            "REST requests sent, by route template and status.",
            labels=["route", "status"],
        )
        for (route, status), count in stats.by_route.items():
            requests.add_metric([route, str(status)], count)
        yield requests
        limited = CounterMetricFamily(
            "steadybot_rest_rate_limited", "429 answers, by scope.", labels=["scope"]
        )
        for scope, count in stats.rate_limited_by_scope.items():
            limited.add_metric([scope], count)
        yield limited
        yield CounterMetricFamily(
            "steadybot_rest_retries", "REST attempts that were retries.", value=stats.retries
        )
        yield CounterMetricFamily(
            "steadybot_rest_refused",
            "Requests not sent because an earlier answer said they would fail.",
            value=stats.refused,
        )
        yield CounterMetricFamily(
            "steadybot_rate_limit_waits",
            "Requests that waited for a rate-limit slot or their turn.",
            value=stats.rate_limit_waits,
        )
        budget = rest.budget
        yield GaugeMetricFamily(
            "steadybot_invalid_requests",
            "401/403/429 answers in Discord's invalid-request window.",
            value=stats.invalid_requests,
        )
        yield GaugeMetricFamily(
            "steadybot_invalid_request_limit",
            "Discord's ban threshold for the invalid-request window.",
            value=budget.limit,
        )
        queued = getattr(rest.rate_limiter, "queued_keys", 0)
        yield GaugeMetricFamily(
            "steadybot_rate_limit_queues",
            "Rate-limit keys with requests waiting on them now.",
            value=queued,
        )
