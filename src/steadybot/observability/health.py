"""The bot's health verdict: ``healthy`` / ``warning`` / ``critical``, with the reasons.

Rates are judged over a sliding window (``STEADYBOT_HEALTH_WINDOW``): the monitor
samples the runtime's counters every ``health_sample_interval`` seconds and compares
the newest sample with the one at the start of the window, so a burst of failures
turns the verdict and, once it has left the window, the verdict returns. A rate is
only judged on at least ``health_min_events`` events, so one failed follow-up on a
quiet bot is not an outage. Checks and their thresholds (all named settings):

- initial-response success (interactions not missing the 3 s deadline);
- follow-up success (token-bound answers after the initial response delivered);
- reset success and active menu locks (the reset manager's own verdict);
- event-loop lag (when a watchdog is attached);
- the invalid-request budget's share of Discord's ban threshold;
- whatever components register (e.g. circuit breakers): :meth:`HealthMonitor.register`.

``GET /health`` answers 200 for healthy and warning, 503 for critical. The verdict is
also logged every ``health_log_interval`` seconds, at info, warning or error.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from steadybot.clock import Clock, Timer

if TYPE_CHECKING:
    from steadybot.bot import Bot

__all__ = ["Check", "HealthMonitor", "Status", "Verdict"]

log = logging.getLogger("steadybot.health")

Status = Literal["healthy", "warning", "critical"]
_RANK: dict[Status, int] = {"healthy": 0, "warning": 1, "critical": 2}
Check = Callable[[], "tuple[Status, str] | None"]
"""A component's check: None when fine, else its status and the reason."""


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reasons: tuple[str, ...]
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def http_status(self) -> int:
        return 503 if self.status == "critical" else 200

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "reasons": list(self.reasons), "figures": self.figures}


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    interactions: int
    missed: int
    followups_delivered: int
    followups_failed: int


class HealthMonitor:
    """Samples a bot's counters and judges them against the named thresholds."""

    def __init__(self, bot: Bot, *, clock: Clock) -> None:
        self._bot = bot
        self._clock = clock
        self._settings = bot.settings
        self._samples: deque[_Sample] = deque()
        self._checks: list[Check] = []
        self._timer: Timer | None = None
        self._last_logged = float("-inf")
        self.lag: Callable[[], float] | None = None  # recent loop lag, from a watchdog

    def register(self, check: Check) -> None:
        """Add a component's check (e.g. a circuit breaker: open → warning)."""
        self._checks.append(check)

    # --- sampling ---------------------------------------------------------------------

    def sample(self) -> None:
        """Record the counters now; keep one sample at or before the window's start."""
        stats = self._bot.statistics()
        now = self._clock.monotonic()
        self._samples.append(
            _Sample(
                now,
                stats.interactions,
                stats.missed_deadline,
                stats.followups_delivered,
                stats.followups_failed + stats.undeliverable,
            )
        )
        horizon = now - self._settings.health_window
        while len(self._samples) > 1 and self._samples[1].at <= horizon:
            self._samples.popleft()

    def start(self) -> None:
        """Sample (and log the verdict) periodically, on the bot's clock."""
        if self._timer is None:
            self._tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        verdict = self.verdict()
        now = self._clock.monotonic()
        if now - self._last_logged >= self._settings.health_log_interval:
            self._last_logged = now
            level = {"healthy": logging.INFO, "warning": logging.WARNING}.get(
                verdict.status, logging.ERROR
            )
            log.log(level, "health: %s%s", verdict.status, _because(verdict.reasons))
        self._timer = self._clock.call_later(self._settings.health_sample_interval, self._tick)

    # --- the verdict --------------------------------------------------------------------

    def verdict(self) -> Verdict:
        """The verdict now (takes a sample first)."""
        self.sample()
        findings: list[tuple[Status, str]] = []
        figures: dict[str, float] = {}
        self._rates(findings, figures)
        self._gauges(findings, figures)
        for check in self._checks:
            found = check()
            if found is not None:
                findings.append(found)
        status: Status = "healthy"
        for found_status, _ in findings:
            if _RANK[found_status] > _RANK[status]:
                status = found_status
        return Verdict(status, tuple(reason for _, reason in findings), figures)

    def _rates(self, findings: list[tuple[Status, str]], figures: dict[str, float]) -> None:
        """Success rates over the window, judged on enough events only."""
        minimum = self._settings.health_min_events
        first, last = self._samples[0], self._samples[-1]
        interactions = last.interactions - first.interactions
        if interactions >= minimum:
            success = 1 - (last.missed - first.missed) / interactions
            figures["initial_response_success"] = round(success, 4)
            self._rate(findings, "initial-response success", success)
        delivered = last.followups_delivered - first.followups_delivered
        failed = last.followups_failed - first.followups_failed
        if delivered + failed >= minimum:
            success = delivered / (delivered + failed)
            figures["followup_success"] = round(success, 4)
            self._rate(findings, "follow-up success", success)

    def _gauges(self, findings: list[tuple[Status, str]], figures: dict[str, float]) -> None:
        """What holds now: resets and locks, loop lag, the invalid-request budget."""
        settings = self._settings
        resets = self._bot.reset_manager
        if resets is not None:
            health = resets.health()
            if health.status != "healthy":
                findings += [(health.status, reason) for reason in health.reasons]
        if self.lag is not None:
            lag = self.lag()
            figures["loop_lag_seconds"] = round(lag, 4)
            self._level(
                findings,
                f"event-loop lag {lag:.2f}s",
                lag,
                settings.health_loop_lag_warning,
                settings.health_loop_lag_critical,
            )
        share = self._bot.rest.budget.share
        figures["invalid_request_share"] = round(share, 4)
        self._level(
            findings,
            f"invalid requests at {share:.0%} of the ban threshold",
            share,
            settings.health_invalid_share_warning,
            settings.health_invalid_share_critical,
        )

    @staticmethod
    def _level(
        findings: list[tuple[Status, str]],
        reason: str,
        value: float,
        warning: float,
        critical: float,
    ) -> None:
        if value >= critical:
            findings.append(("critical", reason))
        elif value >= warning:
            findings.append(("warning", reason))

    def _rate(self, findings: list[tuple[Status, str]], what: str, success: float) -> None:
        settings = self._settings
        if success < settings.health_success_critical:
            findings.append(
                ("critical", f"{what} {success:.0%} < {settings.health_success_critical:.0%}")
            )
        elif success < settings.health_success_warning:
            findings.append(
                ("warning", f"{what} {success:.0%} < {settings.health_success_warning:.0%}")
            )


def _because(reasons: tuple[str, ...]) -> str:
    return f" ({'; '.join(reasons)})" if reasons else ""
