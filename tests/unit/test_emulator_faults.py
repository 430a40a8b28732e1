"""Fault rules and profiles: seeded, matched by route, capped, counted."""

from __future__ import annotations

import pytest

from steadybot.emulator.faults import PROFILES, FaultInjector, FaultRule

MESSAGES = "/channels/{channel_id}/messages"


def test_a_certain_rule_fires_every_time_and_is_counted() -> None:
    faults = FaultInjector()
    faults.set_rules([FaultRule(route="/channels/*", status=503, name="down")])
    fault = faults.decide("POST", MESSAGES)
    assert fault is not None
    assert fault.status == 503
    assert faults.decide("GET", "/users/@me") is None
    assert faults.injected == {"down": 1}
    assert faults.total == 1


def test_method_and_count_limit_a_rule() -> None:
    faults = FaultInjector()
    faults.set_rules([FaultRule(route="*", method="DELETE", status=500, count=2, name="x")])
    assert faults.decide("POST", MESSAGES) is None
    fired = [faults.decide("DELETE", MESSAGES) for _ in range(5)]
    assert sum(f is not None for f in fired) == 2


def test_probability_is_seeded_and_roughly_right() -> None:
    def run(seed: int) -> list[bool]:
        faults = FaultInjector(seed=seed)
        faults.set_rules([FaultRule(route="*", probability=0.1, status=500)])
        return [faults.decide("GET", MESSAGES) is not None for _ in range(2000)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 140 <= sum(run(7)) <= 260


def test_latency_rules_add_latency_within_their_range() -> None:
    faults = FaultInjector(seed=1)
    faults.set_rules([FaultRule(route="*", latency=(0.1, 0.8))])
    delays = [f.latency for f in (faults.decide("GET", MESSAGES) for _ in range(50)) if f]
    assert len(delays) == 50
    assert all(0.1 <= d <= 0.8 for d in delays)
    assert all(faults.decide("GET", MESSAGES).status is None for _ in range(3))  # type: ignore[union-attr]


def test_profiles() -> None:
    assert set(PROFILES) >= {"none", "flaky"}
    faults = FaultInjector(seed=3, profile="flaky")
    decided = [faults.decide("POST", MESSAGES) for _ in range(2000)]
    statuses = [f.status for f in decided if f is not None and f.status is not None]
    assert 500 in statuses
    assert 429 in statuses
    assert 0.02 < len(statuses) / 2000 < 0.12
    callbacks = [
        faults.decide("POST", "/interactions/{interaction_id}/{token}/callback") for _ in range(500)
    ]
    assert all(f is None for f in callbacks), "profiles never fault the interaction callback"
    with pytest.raises(ValueError, match="unknown fault profile"):
        faults.set_profile("chaos")


def test_rules_from_json_are_checked() -> None:
    rule = FaultRule.from_json({"route": "/channels/*", "status": 500, "latency": [0.1, 0.2]})
    assert rule.latency == (0.1, 0.2)
    with pytest.raises(ValueError, match="unknown fault rule fields"):
        FaultRule.from_json({"route": "*", "status": 500, "colour": "red"})
    with pytest.raises(ValueError, match="probability"):
        FaultRule(probability=2.0, status=500)
    with pytest.raises(ValueError, match="needs a status"):
        FaultRule(route="*")
