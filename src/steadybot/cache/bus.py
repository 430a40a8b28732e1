"""How caches in different processes tell each other to drop a key.

A :class:`~steadybot.cache.BoundedCache` that invalidates a key (or a prefix, or a tag)
drops it locally and publishes an :class:`Invalidation` on its bus; every other cache
of the same *name* subscribed to the bus drops the same entries. The publisher skips
its own message (``origin``), so an echo can never drop a value it stored right after
invalidating.

Two implementations of one Protocol: :class:`LocalInvalidationBus` fans out inside one
process (tests, several caches of one name in one process, or a single-process bot
that wants the same code path), and
:class:`~steadybot.cache.redis_bus.RedisInvalidationBus` crosses processes over Redis
pub/sub. Delivery is fire-and-forget on both: ``publish`` never blocks the caller, and
a message lost on the way (Redis down, a dropped connection) is not replayed. The
entry's TTL is therefore the bound on how long another process can serve a stale
value; caches whose staleness matters must have one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

__all__ = [
    "INVALIDATION_KINDS",
    "Invalidation",
    "InvalidationBus",
    "InvalidationKind",
    "InvalidationListener",
    "LocalInvalidationBus",
    "Subscribers",
    "check_kind",
]

InvalidationKind = Literal["key", "prefix", "tag"]
"""What an invalidation names: one key, every key with a prefix, every key with a tag."""

INVALIDATION_KINDS: tuple[str, ...] = get_args(InvalidationKind)


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One "drop these entries" message."""

    cache: str
    """The name of the caches it is for."""
    kind: InvalidationKind
    value: str
    """The key, the prefix (``""``: everything) or the tag."""
    origin: str = ""
    """The publishing cache instance's id; that instance ignores its own message."""


InvalidationListener = Callable[[Invalidation], None]


@runtime_checkable
class InvalidationBus(Protocol):
    """Carries invalidations between caches of the same name.

    The bus's owner calls :meth:`start` and :meth:`close` (one bus serves many caches);
    a cache subscribes in its own ``start()`` and unsubscribes in ``close()``.
    """

    def publish(
        self, cache_name: str, kind: InvalidationKind, value: str, *, origin: str = ""
    ) -> None:
        """Send an invalidation to every subscriber of ``cache_name``; never blocks."""
        ...

    def subscribe(self, cache_name: str, listener: InvalidationListener) -> Callable[[], None]:
        """Call ``listener`` for each invalidation of ``cache_name``; returns the
        function that ends the subscription."""
        ...

    async def start(self) -> None:
        """Begin delivering (a background listener, where there is one)."""
        ...

    async def close(self) -> None:
        """Stop delivering; pending publications get a bounded chance to go out."""
        ...


class LocalInvalidationBus:
    """An in-process bus: ``publish`` calls every other subscriber of the name at once.

    Listeners run synchronously inside ``publish``; a failing listener is not this
    bus's business to hide, so its exception propagates to the publisher.
    """

    def __init__(self) -> None:
        self._listeners = Subscribers()
        self.published = 0

    def publish(
        self, cache_name: str, kind: InvalidationKind, value: str, *, origin: str = ""
    ) -> None:
        check_kind(kind)
        self.published += 1
        message = Invalidation(cache_name, kind, value, origin)
        for listener in self._listeners.of(cache_name):
            listener(message)

    def subscribe(self, cache_name: str, listener: InvalidationListener) -> Callable[[], None]:
        return self._listeners.subscribe(cache_name, listener)

    def subscribers(self, cache_name: str) -> int:
        return len(self._listeners.of(cache_name))

    async def start(self) -> None:
        """Nothing to start: delivery is synchronous."""

    async def close(self) -> None:
        self._listeners.clear()


class Subscribers:
    """The listeners of each cache name, for a bus to deliver to (both buses keep theirs
    here; how a listener's failure is handled stays each bus's own choice)."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[InvalidationListener]] = {}

    def subscribe(self, cache_name: str, listener: InvalidationListener) -> Callable[[], None]:
        """Add ``listener`` for ``cache_name``; returns the function that removes it."""
        self._by_name.setdefault(cache_name, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._by_name.get(cache_name)
            if listeners is not None and listener in listeners:
                listeners.remove(listener)
                if not listeners:
                    del self._by_name[cache_name]  # no per-name leftovers

        return unsubscribe

    def of(self, cache_name: str) -> list[InvalidationListener]:
        """A copy of the listeners of ``cache_name``: one may unsubscribe while a bus
        delivers."""
        return list(self._by_name.get(cache_name, ()))

    def names(self) -> list[str]:
        """The cache names with a listener now (a copy)."""
        return list(self._by_name)

    def clear(self) -> None:
        self._by_name.clear()


def check_kind(kind: str) -> None:
    """Reject an invalidation kind that is not ``key``, ``prefix`` or ``tag``."""
    if kind not in INVALIDATION_KINDS:
        raise ValueError(f"invalidation kind must be one of {INVALIDATION_KINDS}, not {kind!r}")
