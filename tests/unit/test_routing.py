"""Routing: command paths, custom_id patterns with typed arguments, conflicts."""

from __future__ import annotations

import pytest
from support import command

from steadybot.interactions.payload import CommandInteraction
from steadybot.interactions.routing import CustomIdPattern, Router, command_path


def test_exact_and_typed_patterns() -> None:
    router: Router[str] = Router()
    router.add_component("apply", "exact")
    router.add_component("role:{role_id:int}:{action}", "typed")
    router.add_component("page:{rest:rest}", "rest")
    assert router.find_component("apply") is not None
    assert router.find_component("apply").handler == "exact"  # type: ignore[union-attr]
    found = router.find_component("role:42:add")
    assert found is not None
    assert found.handler == "typed"
    assert dict(found.args) == {"role_id": 42, "action": "add"}
    assert router.find_component("role:x:add") is None  # int does not match
    assert router.find_component("role:1:add:extra") is None  # str stops at ':'
    rest = router.find_component("page:a:b:c")
    assert rest is not None
    assert dict(rest.args) == {"rest": "a:b:c"}
    assert router.find_component("unknown") is None


def test_duplicates_and_bad_patterns_are_refused_at_registration() -> None:
    router: Router[str] = Router()
    router.add_component("a:{x}", "one")
    with pytest.raises(ValueError, match="already registered"):
        router.add_component("a:{x}", "two")
    router.add_command("queue join", "h")
    with pytest.raises(ValueError, match="already registered"):
        router.add_command("queue  join", "h")
    with pytest.raises(ValueError, match="unknown placeholder type"):
        CustomIdPattern("a:{x:float}")
    with pytest.raises(ValueError, match="twice"):
        CustomIdPattern("{x}:{x}")
    with pytest.raises(ValueError, match="1-3 names"):
        Router.split_path("a b c d")


def test_format_round_trips_and_checks_the_limit() -> None:
    pattern = CustomIdPattern("role:{role_id:int}:{action}")
    assert pattern.format(role_id=7, action="add") == "role:7:add"
    with pytest.raises(ValueError, match="needs"):
        pattern.format(role_id=7)
    with pytest.raises(ValueError, match="100"):
        pattern.format(role_id=7, action="x" * 100)
    with pytest.raises(ValueError, match="round-trip"):
        pattern.format(role_id=7, action="a:b")


def test_command_paths_walk_groups_and_subcommands() -> None:
    options = [
        {
            "name": "queue",
            "type": 2,
            "options": [
                {
                    "name": "join",
                    "type": 1,
                    "options": [{"name": "region", "type": 3, "value": "eu"}],
                }
            ],
        }
    ]
    payload = command("ladder", options)
    assert isinstance(payload, CommandInteraction)
    path, leaf = command_path(payload.data.name, payload.data.options)
    assert path == ("ladder", "queue", "join")
    assert [(o.name, o.value) for o in leaf] == [("region", "eu")]
    router: Router[str] = Router()
    router.add_command("ladder queue join", "join")
    assert router.find_command(path) is not None


def test_autocomplete_by_option_then_by_command() -> None:
    router: Router[str] = Router()
    router.add_autocomplete("search", "query", "by-option")
    router.add_autocomplete("search", None, "any")
    assert router.find_autocomplete(("search",), "query").handler == "by-option"  # type: ignore[union-attr]
    assert router.find_autocomplete(("search",), "other").handler == "any"  # type: ignore[union-attr]
    assert router.find_autocomplete(("nothing",), None) is None
