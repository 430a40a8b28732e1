"""Seeded fault injection: errors and latency on chosen routes, counted.

A :class:`FaultRule` names a method (or ``*``), a route pattern (``fnmatch`` on the
route template, e.g. ``/channels/*/messages*``), a probability, and what happens: an
error answer (status + Discord code) and/or added latency drawn uniformly from a
range; ``count`` caps how often the rule fires. Profiles are named rule lists; the
``flaky`` profile gives REST a few percent of 5xx and 429 answers and 100 to 800 ms of
latency on some calls. Interaction callbacks are never faulted by the profiles: a
fault there would only test Discord's own reliability, not the bot's.

Decisions come from one ``random.Random(seed)``, so a run repeats exactly.
"""

from __future__ import annotations

import fnmatch
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["PROFILES", "Fault", "FaultInjector", "FaultRule"]


@dataclass(frozen=True, slots=True)
class FaultRule:
    """When and how to fail a request."""

    route: str = "*"
    method: str = "*"
    probability: float = 1.0
    status: int | None = None
    code: int = 0
    message: str = ""
    latency: tuple[float, float] | None = None  # seconds, uniform in [low, high]
    count: int | None = None  # fire at most this often
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.status is None and self.latency is None:
            raise ValueError("a fault rule needs a status, a latency, or both")
        if self.latency is not None and not 0 <= self.latency[0] <= self.latency[1]:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.route} → {self.status or 'latency'}"

    def matches(self, method: str, template: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(template, self.route)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """A rule from the control API's JSON; unknown keys are an error."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        values = dict(data)
        if values.get("latency") is not None:
            low, high = values["latency"]
            values["latency"] = (float(low), float(high))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request."""

    rule: FaultRule
    latency: float = 0.0

    @property
    def status(self) -> int | None:
        return self.rule.status


_REST = "/[cgu]*"  # channels, guilds, users: the bot-token routes
PROFILES: dict[str, tuple[FaultRule, ...]] = {
    "none": (),
    "flaky": (
        FaultRule(
            route=_REST,
            probability=0.03,
            status=500,
            message="500: Internal Server Error",
            name="flaky-500",
        ),
        FaultRule(
            route=_REST, probability=0.01, status=502, message="502: Bad Gateway", name="flaky-502"
        ),
        FaultRule(route=_REST, probability=0.02, status=429, name="flaky-429"),
        FaultRule(
            route="/webhooks/*",
            probability=0.02,
            status=500,
            message="500: Internal Server Error",
            name="flaky-webhook-500",
        ),
        FaultRule(route="/[cguw]*", probability=0.25, latency=(0.1, 0.8), name="flaky-latency"),
    ),
}


class FaultInjector:
    """Chooses, per request, whether a fault applies; counts every fault it injects."""

    def __init__(self, *, seed: int = 0, profile: str = "none") -> None:
        self._rng = random.Random(seed)
        self._rules: tuple[FaultRule, ...] = ()
        self._fired: Counter[str] = Counter()
        self.profile = "custom"
        self.set_profile(profile)

    def set_profile(self, name: str) -> None:
        if name not in PROFILES:
            raise ValueError(f"unknown fault profile {name!r}; known: {sorted(PROFILES)}")
        self._rules = PROFILES[name]
        self.profile = name

    def set_rules(self, rules: list[FaultRule] | tuple[FaultRule, ...]) -> None:
        self._rules = tuple(rules)
        self.profile = "custom"

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return self._rules

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected so far, by rule label."""
        return dict(self._fired)

    @property
    def total(self) -> int:
        return sum(self._fired.values())

    def decide(self, method: str, template: str) -> Fault | None:
        """The fault for this request, if any; errors win over latency-only rules."""
        latency = 0.0
        chosen: FaultRule | None = None
        for rule in self._rules:
            if not rule.matches(method, template):
                continue
            if rule.count is not None and self._fired[rule.label] >= rule.count:
                continue
            if self._rng.random() >= rule.probability:
                continue
            self._fired[rule.label] += 1
            if rule.latency is not None:
                latency += self._rng.uniform(*rule.latency)
            if rule.status is not None and chosen is None:
                chosen = rule
        if chosen is None and latency == 0.0:
            return None
        return Fault(rule=chosen or FaultRule(latency=(0, 0), name="latency"), latency=latency)
