"""Discord ids (snowflakes) and the time inside them.

A snowflake is ``(milliseconds since the Discord epoch) << 22`` plus worker, process and
sequence bits (facts file, "Messages and channels"), so a message's age can be read off
its id without fetching it: the cleanup helper uses that for the 14-day bulk-delete rule.
"""

from __future__ import annotations

__all__ = ["DISCORD_EPOCH_MS", "snowflake_at", "snowflake_time"]

DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_time(snowflake: str | int) -> float:
    """The epoch seconds a Discord id was made at."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


def snowflake_at(epoch_seconds: float, sequence: int = 0) -> int:
    """An id made at ``epoch_seconds``; ``sequence`` (22 bits) tells ids of one ms apart."""
    millis = int(epoch_seconds * 1000) - DISCORD_EPOCH_MS
    return (max(0, millis) << 22) | (sequence & 0x3FFFFF)
