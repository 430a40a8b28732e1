"""A local Discord: REST API, interaction delivery and Discord's clocks, offline.

See :class:`Emulator`. Rules reproduced are listed in ``docs/emulator.md``.
"""

from steadybot.emulator.faults import PROFILES, FaultInjector, FaultRule
from steadybot.emulator.interactions import EmulatedInteraction, InteractionOutcome
from steadybot.emulator.ratelimits import BucketLimit, RateLimiter, RateLimitSettings
from steadybot.emulator.server import Emulator
from steadybot.emulator.views import Action, EmulatorStatistics, InteractionView, Snapshot
from steadybot.emulator.world import World, WorldSettings

__all__ = [
    "PROFILES",
    "Action",
    "BucketLimit",
    "EmulatedInteraction",
    "Emulator",
    "EmulatorStatistics",
    "FaultInjector",
    "FaultRule",
    "InteractionOutcome",
    "InteractionView",
    "RateLimitSettings",
    "RateLimiter",
    "Snapshot",
    "World",
    "WorldSettings",
]
