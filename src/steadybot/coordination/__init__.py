"""Coordination: per-key locks, serial queues and single flight (in-process)."""

from steadybot.coordination.keyed import (
    AlreadyRunning,
    KeyedLock,
    LockTimeout,
    Priority,
    SerialQueue,
    SingleFlight,
)

__all__ = [
    "AlreadyRunning",
    "KeyedLock",
    "LockTimeout",
    "Priority",
    "SerialQueue",
    "SingleFlight",
]
