"""Resilience building blocks: retry policies, circuit breakers and the error taxonomy."""

from steadybot.resilience.breaker import (
    BreakerState,
    BreakerStatistics,
    CircuitBreaker,
    CircuitOpen,
)
from steadybot.resilience.retry import RetryPolicy
from steadybot.resilience.taxonomy import (
    DEFAULT_USER_MESSAGES,
    LOG_LEVELS,
    CriticalError,
    FailureKind,
    FeatureUnavailable,
    NonCriticalError,
    TransientError,
    classify,
    is_transient,
    user_message,
)

__all__ = [
    "DEFAULT_USER_MESSAGES",
    "LOG_LEVELS",
    "BreakerState",
    "BreakerStatistics",
    "CircuitBreaker",
    "CircuitOpen",
    "CriticalError",
    "FailureKind",
    "FeatureUnavailable",
    "NonCriticalError",
    "RetryPolicy",
    "TransientError",
    "classify",
    "is_transient",
    "user_message",
]
