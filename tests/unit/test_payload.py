"""Payload decoding: every interaction type, unknown fields, wrong types."""

from __future__ import annotations

import msgspec
import pytest
from support import autocomplete, command, component, modal_submit, payload

from steadybot.errors import PayloadError
from steadybot.interactions.context import Interaction
from steadybot.interactions.payload import (
    AutocompleteInteraction,
    CommandInteraction,
    ComponentInteraction,
    ModalSubmitInteraction,
    PingInteraction,
    decode_interaction,
)
from steadybot.models import Role, User


def test_each_type_decodes_to_its_struct() -> None:
    assert isinstance(payload(1), PingInteraction)
    assert isinstance(command(), CommandInteraction)
    assert isinstance(component(), ComponentInteraction)
    assert isinstance(autocomplete(), AutocompleteInteraction)
    submitted = modal_submit(fields={"name": "Alice", "why": "fun"})
    assert isinstance(submitted, ModalSubmitInteraction)
    assert submitted.data.fields() == {"name": "Alice", "why": "fun"}


def test_unknown_fields_are_ignored_and_the_author_is_found() -> None:
    p = payload(2, {"id": "1", "name": "x", "brand_new_field": {"a": 1}}, another_new=True)
    assert p.author is not None
    assert p.author.id == "400000000000000004"
    dm = payload(2, {"id": "1", "name": "x"}, member=None, user={"id": "9"})
    assert dm.author is not None
    assert dm.author.id == "9"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "truncated|malformed|invalid"),
        (b"[]", "Expected `object`"),
        (b'{"type": 99, "id": "1", "application_id": "1", "token": "t"}', r"\$.type"),
        (b'{"type": 2, "id": 5, "application_id": "1", "token": "t", "data": {}}', r"\$.id"),
        (b'{"type": 2, "id": "1", "application_id": "1", "token": "t"}', "data"),
        (
            b'{"type": 3, "id": "1", "application_id": "1", "token": "t",'
            b' "data": {"custom_id": "a", "component_type": "2"}, "message": {"id": "1"}}',
            r"component_type",
        ),
    ],
)
def test_wrong_shapes_are_payload_errors_naming_the_field(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_interaction(body)


def test_options_are_typed_and_resolved() -> None:
    options = [
        {"name": "who", "type": 6, "value": "11"},
        {"name": "role", "type": 8, "value": "22"},
        {"name": "count", "type": 4, "value": 3},
        {"name": "ratio", "type": 10, "value": 0.5},
        {"name": "flag", "type": 5, "value": True},
    ]
    resolved = {
        "users": {"11": {"id": "11", "username": "bob"}},
        "roles": {"22": {"id": "22", "name": "staff"}},
    }
    p = payload(2, {"id": "1", "name": "give", "options": options, "resolved": resolved})
    ix = Interaction(p, responder=None, rest=None, clock=None)  # type: ignore[arg-type]
    assert isinstance(ix.options["who"], User)
    assert isinstance(ix.options["role"], Role)
    assert ix.options["count"] == 3
    assert ix.options["ratio"] == 0.5
    assert ix.options["flag"] is True


def test_decoding_round_trips_through_msgspec() -> None:
    p = component(values=["a", "b"])
    assert isinstance(p, ComponentInteraction)
    again = decode_interaction(msgspec.json.encode(p))
    assert again == p
