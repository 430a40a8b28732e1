"""Coordination: per-key locks, serial queues and single flight (in-process)."""

from steadybot.coordination.keyed import (
    AlreadyRunning,
    KeyedLock,
    LockTimeout,
    Priority,
    PriorityGate,
    SerialQueue,
    SingleFlight,
)

__all__ = [
    "AlreadyRunning",
    "KeyedLock",
    "LockTimeout",
    "Priority",
    "PriorityGate",
    "SerialQueue",
    "SingleFlight",
]
