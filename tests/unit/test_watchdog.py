"""The event-loop watchdog measures lag and names the handler that blocks the loop.

Loop lag is real time by nature, so these tests block and idle for real, briefly, and
assert with wide margins: a 0.5 s block against a 0.15 s threshold, sampled every
0.05 s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import settings

import steadybot.observability
from steadybot import Bot, IllegalTransition
from steadybot.observability import LoopWatchdog, WatchdogState, handler_codes

BLOCK = 0.5
THRESHOLD = 0.15
INTERVAL = 0.1
SOURCE = Path(__file__)


def line_of(marker: str) -> int:
    """The line of this file that carries ``marker`` in a comment."""
    lines = SOURCE.read_text().splitlines()
    found = [n for n, text in enumerate(lines, 1) if text.endswith(f"# {marker}")]
    assert len(found) == 1, marker
    return found[0]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "steadybot.watchdog" and r.levelno == logging.WARNING
    ]


async def until(condition: Callable[[], bool], timeout: float = 1.0) -> None:
    """Wait (on the loop, not blocking it) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def block_the_loop() -> None:
    time.sleep(BLOCK)  # non-handler blocks


async def test_blocking_handler_is_named(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="steadybot.watchdog")
    bot = Bot(settings())

    @bot.command("slow")
    async def slow(ix: object) -> None:
        time.sleep(BLOCK)  # noqa: ASYNC251  # slow handler blocks

    watchdog = LoopWatchdog(
        interval=INTERVAL,
        threshold=THRESHOLD,
        handlers=lambda: handler_codes(bot.handler_specs()),
    )
    watchdog.start()
    try:
        await slow(None)
        await until(lambda: watchdog.last_block is not None)
    finally:
        watchdog.stop()

    records = warnings_of(caplog)
    assert len(records) == 1  # one warning per episode
    message = records[0].getMessage()
    assert "slow" in message
    location = f"{SOURCE.name}:{line_of('slow handler blocks')}"
    assert f"{location}\n" in message
    block = watchdog.last_block
    assert block is not None
    assert block.handler == "slow"
    assert block.location.endswith(location)
    assert "time.sleep(BLOCK)" in block.stack
    assert block.blocked_for >= BLOCK - INTERVAL - 0.01
    assert watchdog.blocked >= 1
    assert watchdog.max_lag >= 0.4
    assert watchdog.statistics().last_block == block


async def test_blocking_code_outside_handlers_is_named_by_function(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="steadybot.watchdog")
    watchdog = LoopWatchdog(interval=INTERVAL, threshold=THRESHOLD, handlers=dict)
    watchdog.start()
    try:
        block_the_loop()
        await until(lambda: watchdog.last_block is not None)
    finally:
        watchdog.stop()

    block = watchdog.last_block
    assert block is not None
    assert block.handler == "no handler: block_the_loop"
    assert block.location.endswith(f"{SOURCE.name}:{line_of('non-handler blocks')}")
    [record] = warnings_of(caplog)
    assert "no handler: block_the_loop" in record.getMessage()


async def test_idle_loop_shows_small_lag_and_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="steadybot.watchdog")
    watchdog = LoopWatchdog(interval=INTERVAL, threshold=THRESHOLD)
    watchdog.start()
    try:
        await asyncio.sleep(0.5)
    finally:
        watchdog.stop()

    assert watchdog.samples > 0
    assert len(watchdog.lags) == watchdog.samples
    assert watchdog.max_lag < THRESHOLD
    assert watchdog.blocked == 0
    assert watchdog.last_block is None
    assert warnings_of(caplog) == []


async def test_stop_is_idempotent_and_ends_the_thread() -> None:
    never_started = LoopWatchdog()
    never_started.stop()
    never_started.stop()
    assert never_started.thread is None

    watchdog = LoopWatchdog(interval=INTERVAL, threshold=THRESHOLD)
    watchdog.start()
    thread = watchdog.thread
    assert thread is not None
    assert thread.is_alive()
    assert thread.daemon
    watchdog.stop()
    watchdog.stop()
    assert not thread.is_alive()
    assert watchdog.state is WatchdogState.STOPPED
    samples = watchdog.samples
    await asyncio.sleep(INTERVAL * 1.5)
    assert watchdog.samples == samples  # the loop timer is gone too
    with pytest.raises(IllegalTransition):
        watchdog.start()


def test_start_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        LoopWatchdog().start()


def test_handler_codes_maps_functions_and_what_they_wrap() -> None:
    async def plain(ix: object) -> None: ...

    async def inner(ix: object) -> None: ...

    @functools.wraps(inner)
    async def wrapper(ix: object) -> None: ...

    codes = handler_codes(
        [
            SimpleNamespace(name="plain", func=plain),
            SimpleNamespace(name="wrapped", func=wrapper),
            SimpleNamespace(name="builtin", func=len),  # no Python code: skipped
            object(),  # not a spec: skipped
        ]
    )
    assert codes == {
        plain.__code__: "plain",
        wrapper.__code__: "wrapped",
        inner.__code__: "wrapped",
    }


def test_public_names() -> None:
    assert steadybot.observability.__all__ == [
        "BlockEpisode",
        "LoopWatchdog",
        "WatchdogState",
        "WatchdogStatistics",
        "handler_codes",
    ]
