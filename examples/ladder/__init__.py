"""The ladder story: a ranked-ladder bot on a database, answering in time, exactly once.

Serve it with ``steadybot serve examples.ladder:bot``; ``steadybot demo --story ladder``
runs it against the emulator with a crowd (:data:`scenario`) and, with
``--baseline``, next to :data:`naive_bot`: the production story's first version.

The production story: a ranked-ladder bot on a remote PostgreSQL whose /setup did
several sequential writes and timed out ("This interaction failed") although the rows
were written, whose double submits made duplicate players, and a sibling app that
rewrote a 178 KB JSON file on every click.

Commands: ``/setup`` (race select, region select, name/country modal, then one
transaction), ``/activate``, ``/setcountry country``, ``/queue join``, ``/queue leave``,
``/report result map``, ``/profile`` (one joined query), ``/leaderboard [region]``
(cached, invalidated on every result). Static data (races, regions, countries, maps)
is loaded once at start; the action log is written behind in batches.

Where the data lives (:mod:`.store`): ``STEADYBOT_DATABASE_URL`` (PostgreSQL: a fresh
``ladder_run_*`` schema per run, dropped at close, or the kept schema named by
``LADDER_SCHEMA``), else a temporary SQLite file per run.

The modules: :mod:`.app` (steadybot's version), :mod:`.naive` (the first version),
:mod:`.scenario` (the crowd and its checks), :mod:`.schema` (migrations and static
data), :mod:`.forms` (the bounded per-user form), :mod:`.store` (database location,
simulated network latency).
"""

from __future__ import annotations

import os

from steadybot import Bot
from steadybot.config import Settings

from .app import Ladder
from .naive import NaiveLadder
from .scenario import LadderScenario

__all__ = ["bot", "figures", "ladder", "naive_bot", "naive_ladder", "scenario"]

bot = Bot()
# The production story's version; it also called the API without retries.
naive_bot = Bot(Settings(rest_max_attempts=1))

ladder = Ladder(bot, schema=os.environ.get("LADDER_SCHEMA") or None)
naive_ladder = NaiveLadder(naive_bot)
scenario = LadderScenario([ladder, naive_ladder])


def figures(target: Bot) -> dict[str, object]:
    """What the run cost, for the demo's report (kept when the bot closed)."""
    app = ladder if target is bot else naive_ladder
    return {**app.figures(), "rest_requests": target.rest.statistics().requests}
