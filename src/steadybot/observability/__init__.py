"""Observability: what the runtime can tell about its own health.

:class:`LoopWatchdog` measures event-loop lag and names the handler that blocks the
loop, the first cause of missed 3-second interaction deadlines.
"""

from steadybot.observability.watchdog import (
    BlockEpisode,
    LoopWatchdog,
    WatchdogState,
    WatchdogStatistics,
    handler_codes,
)

__all__ = [
    "BlockEpisode",
    "LoopWatchdog",
    "WatchdogState",
    "WatchdogStatistics",
    "handler_codes",
]
