"""The crafting example's request store: every change is a compare-and-set."""

from __future__ import annotations

import pytest

from examples.crafting.store import (
    CraftRequest,
    IllegalChange,
    RequestState,
    RequestStore,
    VersionConflict,
)


def store_with_one() -> RequestStore:
    store = RequestStore()
    store.add(CraftRequest("1", "g", "c", "requester", "tailor", "wool cloak"))
    return store


def test_two_claims_decided_on_one_version_make_one_claim() -> None:
    store = store_with_one()
    first = store.change(
        "1", expected_version=1, state=RequestState.CLAIMED, by="a", crafter_id="a"
    )
    assert (first.version, first.crafter_id) == (2, "a")
    with pytest.raises(VersionConflict):
        store.change("1", expected_version=1, state=RequestState.CLAIMED, by="b", crafter_id="b")
    assert store.get("1") == first
    assert store.conflicts == 1
    assert store.claimed_twice() == []


def test_a_completed_request_cannot_change_and_the_error_names_both_states() -> None:
    store = store_with_one()
    store.change("1", expected_version=1, state=RequestState.CLAIMED, by="a", crafter_id="a")
    store.change("1", expected_version=2, state=RequestState.COMPLETED, by="a", crafter_id="a")
    with pytest.raises(IllegalChange, match="completed cannot become open"):
        store.change("1", expected_version=3, state=RequestState.OPEN, by="a")


def test_unchecked_writes_are_how_a_request_gets_claimed_twice() -> None:
    store = store_with_one()
    store.write("1", state=RequestState.CLAIMED, by="a", crafter_id="a")
    store.write("1", state=RequestState.CLAIMED, by="b", crafter_id="b")
    assert store.claimed_twice() == ["1"]
