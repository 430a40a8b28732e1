"""Resilience building blocks: retry policies and the error taxonomy."""

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
