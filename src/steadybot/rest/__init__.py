"""Discord REST: routes, the client, and the transport under it."""

from steadybot.rest.client import RestClient, RestStatistics
from steadybot.rest.ratelimit import NoRateLimiter, RateLimiter
from steadybot.rest.routes import CompiledRoute, Route
from steadybot.rest.transport import (
    AiohttpTransport,
    MockTransport,
    Transport,
    TransportRequest,
    TransportResponse,
)

__all__ = [
    "AiohttpTransport",
    "CompiledRoute",
    "MockTransport",
    "NoRateLimiter",
    "RateLimiter",
    "RestClient",
    "RestStatistics",
    "Route",
    "Transport",
    "TransportRequest",
    "TransportResponse",
]
