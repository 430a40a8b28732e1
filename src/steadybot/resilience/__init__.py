"""Resilience building blocks: retry policies and budgets, circuit breakers, the error
taxonomy."""

from steadybot.resilience.breaker import (
    BreakerState,
    BreakerStatistics,
    CircuitBreaker,
    CircuitOpen,
)
from steadybot.resilience.retry import (
    RetryBudget,
    RetryBudgetStatistics,
    RetryPolicy,
    backoff_ceiling,
    retry_call,
)
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
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryPolicy",
    "TransientError",
    "backoff_ceiling",
    "classify",
    "is_transient",
    "retry_call",
    "user_message",
]
