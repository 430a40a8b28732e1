"""Coordination: per-key locks, serial queues and single flight, in-process or on Redis.

The contracts (:class:`Locks`, :class:`Flights`, :class:`Lease`) have two
implementations each; :func:`coordination_from_settings` picks Redis when
``STEADYBOT_REDIS_URL`` is set. See docs/coordination.md.
"""

from steadybot.coordination.backends import Coordination, coordination_from_settings
from steadybot.coordination.contracts import (
    CoordinationUnavailable,
    FlightFailed,
    Flights,
    FlightStatistics,
    Lease,
    LockLost,
    Locks,
    LockStatistics,
)
from steadybot.coordination.keyed import (
    AlreadyRunning,
    FlightTimeout,
    KeyedLock,
    KeyLease,
    LockTimeout,
    Priority,
    PriorityGate,
    SerialQueue,
    SingleFlight,
)
from steadybot.coordination.redis_flights import RedisFlights
from steadybot.coordination.redis_lock import RedisLease, RedisLocks

__all__ = [
    "AlreadyRunning",
    "Coordination",
    "CoordinationUnavailable",
    "FlightFailed",
    "FlightStatistics",
    "FlightTimeout",
    "Flights",
    "KeyLease",
    "KeyedLock",
    "Lease",
    "LockLost",
    "LockStatistics",
    "LockTimeout",
    "Locks",
    "Priority",
    "PriorityGate",
    "RedisFlights",
    "RedisLease",
    "RedisLocks",
    "SerialQueue",
    "SingleFlight",
    "coordination_from_settings",
]
