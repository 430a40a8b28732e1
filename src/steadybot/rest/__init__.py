"""Discord REST: routes, the client, its rate limiter, and the transport under it."""

from steadybot.rest.buckets import BucketManager
from steadybot.rest.budget import InvalidRequestBudget
from steadybot.rest.cleanup import CleanupReport, MessageCleaner
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
    "BucketManager",
    "CleanupReport",
    "CompiledRoute",
    "InvalidRequestBudget",
    "MessageCleaner",
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
