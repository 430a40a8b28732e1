"""steadybot: Discord bots that answer in time, exactly once.

Build a :class:`Bot`, register handlers with its decorators, serve ``bot.asgi()`` (or
``steadybot serve module:bot``). See the README and ``docs/`` for the guide.
"""

from steadybot.bot import Bot
from steadybot.clock import Clock, ManualClock, SystemClock
from steadybot.config import Settings
from steadybot.errors import (
    BadRequest,
    DiscordHTTPError,
    Forbidden,
    IllegalTransition,
    InteractionExpired,
    NotFound,
    PayloadError,
    RateLimited,
    ServerError,
    SignatureError,
    SteadybotError,
    TransportError,
    Unauthorized,
    UserFacingError,
)
from steadybot.interactions import (
    DeferMode,
    Interaction,
    ProgressReporter,
    Responder,
    ResponderState,
    RuntimeStatistics,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Bot",
    "Clock",
    "DeferMode",
    "DiscordHTTPError",
    "Forbidden",
    "IllegalTransition",
    "Interaction",
    "InteractionExpired",
    "ManualClock",
    "NotFound",
    "PayloadError",
    "ProgressReporter",
    "RateLimited",
    "Responder",
    "ResponderState",
    "RuntimeStatistics",
    "ServerError",
    "Settings",
    "SignatureError",
    "SteadybotError",
    "SystemClock",
    "TransportError",
    "Unauthorized",
    "UserFacingError",
    "__version__",
]

# --- bounded caches (steadybot.cache) --------------------------------------------------
from steadybot.cache import BoundedCache, CacheMiss, CacheStatistics

__all__ += ["BoundedCache", "CacheMiss", "CacheStatistics"]
# --- end of bounded caches -------------------------------------------------------------
