"""Resilience building blocks: retry policies (and, later, circuit breakers)."""

from steadybot.resilience.retry import RetryPolicy

__all__ = ["RetryPolicy"]
