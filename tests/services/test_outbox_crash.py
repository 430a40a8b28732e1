"""Acceptance: SIGKILL a bot that reserves, posts and enqueues under load; restart it.

The bounded variant of ``benchmarks/crash/run.py`` (see ``benchmarks/crash/harness.py``
for the shape and the checks): about 100 purchases, 3 kills, on SQLite and PostgreSQL.
The seed is printed; ``STEADYBOT_CRASH_SEED`` replays one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from storage_fixtures import fresh_database_url

from benchmarks.crash.harness import run_crash

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_9_loses_nothing_and_shows_nothing_twice(backend: str, tmp_path: Path) -> None:
    seed_text = os.environ.get("STEADYBOT_CRASH_SEED")
    async with fresh_database_url(backend, tmp_path) as url:
        result = await run_crash(
            url,
            backend=backend,
            interactions=100,
            kills=3,
            seed=int(seed_text) if seed_text else None,
        )
    print(result.to_json())
    assert result.kills == 3
    assert result.commits > 0
    assert result.discrepancies == []
    assert (result.duplicates, result.lost, result.orphan_answers) == (0, 0, 0)
    assert result.charged_without_answer == 0
    assert result.delivered == result.commits  # nothing expired in so short a run
    assert result.ok
