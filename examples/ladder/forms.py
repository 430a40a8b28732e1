"""The /setup form's unfinished steps, held in memory per user, bounded.

A form spans three interactions (race select, region select, name/country modal),
so its answers so far must live somewhere between them. A plain ``dict`` keyed by user
is the production story's version: every user who opened /setup and walked away stays
in it until the process dies. Here a form lives ``ttl`` seconds after its last step
(on the injected clock) and at most ``max_forms`` are held; past that the least
recently touched goes. A user whose form went answers "run /setup again", which costs
a click, never memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cachetools import TTLCache

from steadybot.clock import Clock

__all__ = ["FORM_TTL", "MAX_FORMS", "Draft", "FormStatistics", "SetupForms"]

FORM_TTL: Final = 600.0  # seconds a half-filled form is kept after its last step
MAX_FORMS: Final = 10_000  # forms held at most


@dataclass
class Draft:
    """What a user picked so far."""

    race: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class FormStatistics:
    held: int
    max_forms: int
    peak: int  # most forms held at once
    started: int
    finished: int


class SetupForms:
    """Unfinished /setup forms by user id, each kept ``ttl`` s after its last step."""

    def __init__(self, clock: Clock, *, ttl: float = FORM_TTL, max_forms: int = MAX_FORMS) -> None:
        if ttl <= 0 or max_forms < 1:
            raise ValueError("a form store needs ttl > 0 and max_forms >= 1")
        self._forms: TTLCache[str, Draft] = TTLCache(
            maxsize=max_forms, ttl=ttl, timer=clock.monotonic
        )
        self._peak = 0
        self._started = 0
        self._finished = 0

    def begin(self, user_id: str) -> Draft:
        """A new, empty form for ``user_id`` (replacing an unfinished one)."""
        draft = self._forms[user_id] = Draft()
        self._started += 1
        self._peak = max(self._peak, len(self._forms))
        return draft

    def get(self, user_id: str) -> Draft | None:
        """The user's form, its life renewed; None when it expired or never was."""
        draft = self._forms.get(user_id)
        if draft is not None:
            self._forms[user_id] = draft  # a step renews the form's TTL
        return draft

    def finish(self, user_id: str) -> None:
        """The form was submitted and stored: forget it."""
        if self._forms.pop(user_id, None) is not None:
            self._finished += 1

    def statistics(self) -> FormStatistics:
        self._forms.expire()
        return FormStatistics(
            held=len(self._forms),
            max_forms=int(self._forms.maxsize),
            peak=self._peak,
            started=self._started,
            finished=self._finished,
        )
