"""Structured logs: interaction fields on every line inside an interaction, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from support import BOT_TOKEN, TOKEN, component, harness

from steadybot import Bot, Interaction
from steadybot.observability.logs import configure_logging

log = logging.getLogger("examples.test_logs")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(json=True, secrets=[BOT_TOKEN], stream=stream, level="INFO")
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_lines_inside_an_interaction_carry_its_fields(lines: io.StringIO) -> None:
    h = harness()
    bot = Bot(h.settings, clock=h.clock, transport=h.discord.transport())
    arrived = h.clock.monotonic()

    @bot.component("hello", defer="never")
    async def hello(interaction: Interaction) -> None:
        await h.clock.advance(0.25)
        log.info("working on %s", interaction.custom_id)
        await interaction.update(content="hi")

    payload = component("hello")
    await bot.handle(payload, arrived_at=arrived, sink=h.sink)
    log.info("outside any interaction")
    found = records(lines)
    inside = next(r for r in found if r["event"] == "working on hello")
    assert inside["interaction_id"] == payload.id
    assert inside["handler"] == "hello"
    assert inside["guild_id"] == payload.guild_id
    assert payload.author is not None
    assert inside["user_id"] == payload.author.id
    assert inside["elapsed"] == pytest.approx(0.25)
    assert inside["level"] == "info"
    assert inside["logger"] == "examples.test_logs"
    outside = next(r for r in found if r["event"] == "outside any interaction")
    assert "interaction_id" not in outside


def test_tokens_and_secrets_are_redacted(lines: io.StringIO) -> None:
    log.warning("token %s and header Bot %s", TOKEN, BOT_TOKEN)
    try:
        raise ValueError(f"failed with {BOT_TOKEN}")
    except ValueError:
        log.exception("boom")
    text = lines.getvalue()
    assert TOKEN not in text
    assert BOT_TOKEN not in text
    assert "[redacted]" in text
    assert any("exception" in r for r in records(lines))


def test_a_terminal_gets_readable_text() -> None:
    stream = io.StringIO()
    handler = configure_logging(json=False, stream=stream)
    try:
        log.info("plain words")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    text = stream.getvalue()
    assert "plain words" in text
    assert not text.lstrip().startswith("{")
