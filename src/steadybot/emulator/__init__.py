"""A local Discord: REST API, interaction delivery and Discord's clocks, offline.

See :class:`Emulator`. Rules reproduced are listed in ``docs/emulator.md``.
"""

from steadybot.emulator.interactions import EmulatedInteraction, InteractionOutcome
from steadybot.emulator.server import Emulator, EmulatorStatistics
from steadybot.emulator.world import World, WorldSettings

__all__ = [
    "EmulatedInteraction",
    "Emulator",
    "EmulatorStatistics",
    "InteractionOutcome",
    "World",
    "WorldSettings",
]
