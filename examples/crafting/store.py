"""The crafting requests: a versioned store where every change is a compare-and-set.

Correctness lives here, not in locks (DESIGN, "Decisions"): a change names the version
it was decided on, and the store refuses it when the request has moved on since. Two
crafters racing for one request, a double click that slipped past the button's guard,
or the expiry job releasing a claim while its crafter completes it: exactly one change
wins, the others get :class:`VersionConflict` and say so to their user. The per-request
lock in front of it only saves the losers the work.

In memory for the example; a board run by several processes keeps the same shape in its
database: ``UPDATE requests SET state=…, version=version+1 WHERE id=? AND version=?``,
one row changed or a conflict.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, replace

from steadybot.errors import SteadybotError

__all__ = [
    "CraftRequest",
    "IllegalChange",
    "RequestState",
    "RequestStore",
    "VersionConflict",
]


class RequestState(enum.Enum):
    OPEN = "open"  # waiting for a crafter of its profession
    CLAIMED = "claimed"  # a crafter is on it; complete, release, or the claim expires
    COMPLETED = "completed"  # done; no further change


_ALLOWED = {
    RequestState.OPEN: {RequestState.CLAIMED},
    RequestState.CLAIMED: {RequestState.OPEN, RequestState.COMPLETED},
    RequestState.COMPLETED: set(),
}


class VersionConflict(SteadybotError):
    """The request changed since the version this change was decided on."""

    def __init__(self, request_id: str, expected: int, actual: int) -> None:
        super().__init__(f"request {request_id} is at version {actual}, not {expected}")
        self.request_id = request_id
        self.expected = expected
        self.actual = actual


class IllegalChange(SteadybotError):
    """A change the request's lifecycle does not allow (names both states)."""

    def __init__(self, request_id: str, state: RequestState, to: RequestState) -> None:
        super().__init__(f"request {request_id}: {state.value} cannot become {to.value}")


@dataclass(frozen=True, slots=True)
class CraftRequest:
    id: str  # the id of the /craft request interaction: unique, and the crowd knows it
    guild_id: str
    channel_id: str
    requester_id: str
    profession: str
    item: str
    state: RequestState = RequestState.OPEN
    crafter_id: str | None = None
    version: int = 1  # every change adds one
    claimed_at: float | None = None  # monotonic, for the expiry job


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a request's history: what it became, at which version, by whom."""

    version: int
    state: RequestState
    by: str


class RequestStore:
    """Requests by id, changed only by compare-and-set."""

    def __init__(self) -> None:
        self._requests: dict[str, CraftRequest] = {}
        self.history: dict[str, list[Change]] = {}
        self.conflicts = 0

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

    def __len__(self) -> int:
        return len(self._requests)

    def add(self, request: CraftRequest) -> CraftRequest:
        if request.id in self._requests:
            raise ValueError(f"request {request.id} exists")
        self._requests[request.id] = request
        self.history[request.id] = [Change(request.version, request.state, request.requester_id)]
        return request

    def get(self, request_id: str) -> CraftRequest | None:
        return self._requests.get(request_id)

    def open_requests(self, profession: str) -> list[CraftRequest]:
        return [
            r
            for r in self._requests.values()
            if r.profession == profession and r.state is RequestState.OPEN
        ]

    def change(
        self,
        request_id: str,
        *,
        expected_version: int,
        state: RequestState,
        by: str,
        crafter_id: str | None = None,
        at: float | None = None,
    ) -> CraftRequest:
        """Move the request to ``state`` if it is still at ``expected_version``."""
        current = self._requests[request_id]
        if current.version != expected_version:
            self.conflicts += 1
            raise VersionConflict(request_id, expected_version, current.version)
        if state not in _ALLOWED[current.state]:
            raise IllegalChange(request_id, current.state, state)
        changed = replace(
            current,
            state=state,
            crafter_id=crafter_id,
            version=current.version + 1,
            claimed_at=at if state is RequestState.CLAIMED else None,
        )
        self._requests[request_id] = changed
        self.history[request_id].append(Change(changed.version, state, by))
        return changed

    def write(
        self, request_id: str, *, state: RequestState, by: str, crafter_id: str | None = None
    ) -> CraftRequest:
        """Last writer wins: no version, no lifecycle check (the naive board's way)."""
        current = self._requests[request_id]
        changed = replace(current, state=state, crafter_id=crafter_id, version=current.version + 1)
        self._requests[request_id] = changed
        self.history[request_id].append(Change(changed.version, state, by))
        return changed

    def claimed_twice(self) -> list[str]:
        """Requests whose history has a claim following a claim (none, if it works)."""
        return [
            request_id
            for request_id, changes in self.history.items()
            if any(
                a.state is RequestState.CLAIMED and b.state is RequestState.CLAIMED
                for a, b in itertools.pairwise(changes)
            )
        ]
