"""Handler failures by kind: the user's message, the log level, the metric, the health."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import command, harness

from steadybot import Bot, Interaction
from steadybot.resilience.taxonomy import (
    DEFAULT_USER_MESSAGES,
    FailureKind,
    FeatureUnavailable,
    NonCriticalError,
    TransientError,
)


def make_bot() -> tuple[Bot, object]:
    h = harness()
    return Bot(h.settings, clock=h.clock, transport=h.discord.transport()), h


def failures(bot: Bot) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(bot.metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "steadybot_handler_failures_total":
                found[(sample.labels["handler"], sample.labels["kind"])] = sample.value
    return found


@pytest.mark.parametrize(
    ("error", "message", "level"),
    [
        (
            TransientError("db timeout"),
            DEFAULT_USER_MESSAGES[FailureKind.TRANSIENT],
            logging.WARNING,
        ),
        (
            FeatureUnavailable("maps down", user_message="Maps are resting."),
            "Maps are resting.",
            logging.ERROR,
        ),
        (RuntimeError("a bug"), None, logging.ERROR),  # the configured error_message
        (NonCriticalError("cleanup missed one"), "", logging.INFO),
    ],
)
async def test_a_failure_gets_its_kinds_message_level_and_metric(
    error: Exception, message: str | None, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    bot, h = make_bot()

    @bot.command("work")
    async def work(interaction: Interaction) -> None:
        raise error

    with caplog.at_level(logging.INFO, logger="steadybot.runner"):
        await bot.handle(command("work"), arrived_at=bot.clock.monotonic(), sink=h.sink)  # type: ignore[attr-defined]
    answers = [b.get("data", {}).get("content") for b in h.sink.bodies]  # type: ignore[attr-defined]
    expected = bot.settings.error_message if message is None else message
    # No failure text for a non-critical failure: the runtime's plain acknowledgement.
    assert answers == [expected or bot.settings.done_message]
    record = next(r for r in caplog.records if "handler work failed" in r.getMessage())
    assert record.levelno == level
    kind = "feature" if isinstance(error, RuntimeError) else type(error).kind.value  # type: ignore[attr-defined]
    assert failures(bot) == {("work", kind): 1.0}


async def test_an_open_breaker_degrades_health_and_shows_in_metrics() -> None:
    bot, _ = make_bot()
    breaker = bot.breaker("maps", min_calls=2, failure_rate=0.5, open_for=10.0)
    assert bot.breaker("maps") is breaker

    async def down() -> None:
        raise ConnectionError("maps unreachable")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(down)
    verdict = bot.health.verdict()
    assert verdict.status == "warning"
    assert "breaker maps is open" in verdict.reasons[0]
    text = bot.metrics.exposition().decode()
    assert 'steadybot_breaker_open{breaker="maps"} 1.0' in text
