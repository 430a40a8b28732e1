"""What a crowd run measured, from Discord's side: one report shape for every scenario.

The report is computed from the emulator's views of the interactions this crowd sent
(:class:`~steadybot.emulator.views.Snapshot`), never from the bot's own counters, so a
bot cannot grade itself. Its JSON shape is what ``steadybot crowd --json`` and
``steadybot demo --json`` write.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from steadybot.emulator.views import InteractionView, Snapshot

__all__ = ["Check", "CrowdReport", "Followups", "LatencySummary", "percentile"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Check:
    """One scenario invariant."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class LatencySummary:
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencySummary:
        return cls(
            p50=round(percentile(values_ms, 0.50), 1),
            p95=round(percentile(values_ms, 0.95), 1),
            p99=round(percentile(values_ms, 0.99), 1),
            max=round(max(values_ms, default=0.0), 1),
        )


@dataclass(frozen=True)
class Followups:
    """Answers owed after a defer (initial response type 5 or 6).

    ``sent``: deferred interactions; ``delivered``: the answer landed (type 5: the
    "thinking…" message was replaced; type 6: a follow-up was posted or the message
    edited); ``expired``: the token died first; ``failed``: neither. A deliberately
    silent type 6 acknowledgement therefore counts as failed: stories should answer.
    """

    sent: int
    delivered: int
    failed: int
    expired: int


@dataclass(frozen=True)
class CrowdReport:
    scenario: str
    users: int
    seconds: float
    interactions: int
    acknowledged_in_time: int
    failed: int
    double_acknowledged: int
    ack_ms: LatencySummary
    followups: Followups
    rate_limited: int
    faults_injected: int
    checks: Mapping[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.failed == 0
            and self.double_acknowledged == 0
            and self.followups.delivered == self.followups.sent
            and all(check.ok for check in self.checks.values())
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    @classmethod
    def build(
        cls,
        *,
        scenario: str,
        users: int,
        seconds: float,
        snapshot: Snapshot,
        checks: Mapping[str, Check],
    ) -> CrowdReport:
        sent = list(snapshot.interactions.values())
        latencies = [1000 * i.ack_latency for i in sent if i.ack_latency is not None]
        stats = snapshot.statistics
        return cls(
            scenario=scenario,
            users=users,
            seconds=round(seconds, 2),
            interactions=len(sent),
            acknowledged_in_time=sum(i.outcome == "acknowledged" for i in sent),
            failed=sum(i.outcome == "failed" for i in sent),
            double_acknowledged=sum(i.double_acknowledged for i in sent),
            ack_ms=LatencySummary.of(latencies),
            followups=_followups(sent),
            rate_limited=sum(stats.rate_limited.values()),
            faults_injected=stats.faults_injected,
            checks=dict(checks),
        )


def _followups(interactions: Sequence[InteractionView]) -> Followups:
    owed = [i for i in interactions if i.ack_type in (5, 6)]
    delivered = sum(i.answered_after_defer for i in owed)
    expired = sum(1 for i in owed if not i.answered_after_defer and i.expired_calls)
    return Followups(
        sent=len(owed), delivered=delivered, failed=len(owed) - delivered - expired, expired=expired
    )
