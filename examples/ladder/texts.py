"""What the ladder answers: shared by both versions of the bot and read by the crowd's
checks (which judge what users were told against what the database holds)."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ACTIVATED",
    "ACTIVATE_FIRST",
    "ALREADY_QUEUED",
    "ALREADY_SET_UP",
    "BOARD_HEADER",
    "BOARD_PATTERN",
    "COUNTRY_CODE",
    "COUNTRY_SET",
    "FORM_EXPIRED",
    "JOINED",
    "LEFT",
    "NOT_QUEUED",
    "RECORDED",
    "SETUP_DONE",
    "SETUP_FIRST",
    "STEP_COUNTRY_RETRY",
    "STEP_RACE",
    "STEP_REGION",
    "UNKNOWN_COUNTRY",
]

STEP_RACE: Final = "**Ladder setup 1/3**: pick your race."
STEP_REGION: Final = "**Ladder setup 2/3**: pick the region you play in."
STEP_COUNTRY_RETRY: Final = "Press the button to fix your country."
SETUP_DONE: Final = "✅ Setup complete"
ALREADY_SET_UP: Final = "You're already set up."
FORM_EXPIRED: Final = "Your setup form expired: run /setup again."
SETUP_FIRST: Final = "You're not on the ladder yet: run /setup first."
ACTIVATE_FIRST: Final = "Run /activate first to play this season."
ACTIVATED: Final = "✅ You're active this season."
UNKNOWN_COUNTRY: Final = "Unknown country"
COUNTRY_SET: Final = "🌍 Country set to"
JOINED: Final = "✅ You joined the queue"
ALREADY_QUEUED: Final = "You're already in the queue."
LEFT: Final = "👋 You left the queue."
NOT_QUEUED: Final = "You're not in the queue."
RECORDED: Final = "📝 Recorded"
BOARD_HEADER: Final = "🏆 Leaderboard after {results} results"
BOARD_PATTERN: Final = re.compile(r"Leaderboard after (\d+) results")
COUNTRY_CODE: Final = re.compile(r"\(([A-Z]{2})\)")  # "Germany (DE)"
