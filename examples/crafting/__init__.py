"""The crafting story: a guild's crafting-request board, under a crowd.

Serve it with ``steadybot serve examples.crafting:bot``; ``steadybot demo`` runs it
against the emulator with a crowd (:data:`scenario`) and, with ``--baseline``, next to
:data:`naive_bot`: the board's first version in production.

Members post requests for a profession (``/craft request``); crafters (members with the
profession's role) claim them, confirm unless they are in fast mode, then complete or
release them; a claim nobody completes expires. The production stories behind it: a
member cache limit that evicted a member in the middle of an operation ("Supplied
parameter is not a User nor a Role"); a board that fetched each member from the API
(~200 ms) on every permission check; double clicks that created duplicate claims;
background jobs racing users' clicks on the same request. ``board.py`` is the steadybot
version, ``naive.py`` the first one, ``scenario.py`` the crowd and its checks.

``steadybot demo`` re-imports a story for each run, with settings for that run's
emulator; only this module is re-imported, so the bots (and everything holding run
state) are made here, and the other modules hold classes and functions only.
"""

from __future__ import annotations

from examples.crafting.board import Board, CraftingSettings
from examples.crafting.naive import NaiveBoard
from examples.crafting.scenario import CraftingScenario
from steadybot import Bot
from steadybot.config import Settings

__all__ = ["board", "bot", "figures", "naive_board", "naive_bot", "scenario", "settings"]

settings = CraftingSettings()
bot = Bot()
board = Board(bot, settings)
# The first version also called the API without retries.
naive_bot = Bot(Settings(rest_max_attempts=1))
naive_board = NaiveBoard(naive_bot, settings)
scenario = CraftingScenario(board.fast_mode_users, [board.store, naive_board.store])


def figures(target: Bot) -> dict[str, object]:
    """What the run cost, for the demo's report."""
    rest = target.rest.statistics()
    result: dict[str, object] = {"rest_requests": rest.requests, "rest_429s": rest.rate_limited}
    if target is naive_bot:
        result.update(
            member_fetches=naive_board.member_fetches,
            per_user_map_entries=sum(len(v) for v in naive_board.history.values())
            + len(naive_board.pending)
            + len(naive_board.cards),
        )
        return result
    members = bot.members.statistics()
    member_cache = bot.members.cache.statistics()
    listings = board.listings.statistics()
    result.update(
        members_warmed=members.warmed,
        member_pages=members.pages,
        members_fetched_one_by_one=members.fetched,
        member_cache_hits=member_cache.hits,
        member_cache_misses=member_cache.misses,
        member_cache_evictions=member_cache.evictions,
        members_pinned_now=member_cache.pinned,
        board_cache_hits=listings.hits,
        board_cache_misses=listings.misses,
        board_cache_invalidations=listings.invalidations,
        busy_rejections=bot.guards.statistics().busy,
        claims=board.counts["claims"],
        lost_races=board.counts["conflicts"],
        expired_claims=board.counts["expired"],
        refused=board.counts["denied"],
        confirmations_deleted=board.cleanup["deleted"],
        cleanup_bulk_requests=board.cleanup["bulk_requests"],
        cleanup_single_requests=board.cleanup["single_requests"],
    )
    return result
