"""The per-key records of a BoundedCache and the tag index, each alive only while needed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from steadybot.cache._store import Entry

__all__ = ["Flight", "Pin", "TagIndex", "check_ttl", "clean_tags", "retrieve"]

V = TypeVar("V")


class Pin(Generic[V]):
    __slots__ = ("count", "entry")

    def __init__(self, entry: Entry[V]) -> None:
        self.entry = entry
        self.count = 0


class Flight(Generic[V]):
    __slots__ = ("future", "invalidated", "tags")

    def __init__(self, tags: tuple[str, ...]) -> None:
        self.tags = tags
        self.invalidated = False
        # Made when the first joiner arrives: a load nobody joins allocates no future.
        self.future: asyncio.Future[V] | None = None


class TagIndex:
    """tag -> the keys of the cached entries carrying it.

    A tag disappears with its last key: an empty set kept for every tag ever seen is
    the classic leak of tag indexes.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, set[str]] = {}

    def add(self, key: str, tags: tuple[str, ...]) -> None:
        for tag in tags:
            keys = self._keys.get(tag)
            if keys is None:
                keys = self._keys[tag] = set()
            keys.add(key)

    def remove(self, key: str, tags: tuple[str, ...]) -> None:
        for tag in tags:
            keys = self._keys.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys[tag]

    def keys(self, tag: str) -> list[str]:
        """A copy: the caller drops entries while it walks them."""
        return list(self._keys.get(tag, ()))

    def tags(self) -> set[str]:
        return set(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise TypeError(f"tags must be an iterable of strings, not the string {tags!r}")
    unique = tuple(dict.fromkeys(tags))
    for tag in unique:
        if not isinstance(tag, str):
            raise TypeError(f"a tag must be a string, not {tag!r}")
    return unique


def check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be > 0 seconds or None, not {ttl!r}")


def retrieve(future: asyncio.Future[Any]) -> None:
    # Every joiner may have been cancelled: read the outcome so asyncio does not log
    # "exception was never retrieved".
    if not future.cancelled():
        future.exception()
