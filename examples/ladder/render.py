"""Menus, the modal and texts, the same for both versions (the checks parse them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .schema import StaticData
from .texts import BOARD_HEADER

__all__ = [
    "BOARD_SIZE",
    "PROFILE_MODAL",
    "board_text",
    "modal_fields",
    "profile_text",
    "race_select",
    "region_select",
    "retry_button",
]

BOARD_SIZE = 10
PROFILE_MODAL = "setup:profile"


def _select(custom_id: str, placeholder: str, options: Mapping[str, str]) -> list[dict[str, Any]]:
    select = {
        "type": 3,
        "custom_id": custom_id,
        "placeholder": placeholder,
        "options": [{"label": label, "value": code} for code, label in options.items()],
    }
    return [{"type": 1, "components": [select]}]


def race_select(static: StaticData) -> list[dict[str, Any]]:
    return _select("setup:race", "Your race", static.races)


def region_select(static: StaticData) -> list[dict[str, Any]]:
    return _select("setup:region", "Your region", static.regions)


def retry_button() -> list[dict[str, Any]]:
    button = {"type": 2, "style": 1, "label": "Fix my country", "custom_id": "setup:retry"}
    return [{"type": 1, "components": [button]}]


def modal_fields() -> list[dict[str, Any]]:
    """The last step: name and country, typed."""
    name = {
        "type": 4,
        "custom_id": "name",
        "label": "Player name",
        "style": 1,
        "min_length": 2,
        "max_length": 32,
        "required": True,
    }
    country = {
        "type": 4,
        "custom_id": "country",
        "label": "Country (two-letter code, e.g. DE)",
        "style": 1,
        "min_length": 2,
        "max_length": 40,
        "required": True,
    }
    return [{"type": 1, "components": [name]}, {"type": 1, "components": [country]}]


def profile_text(row: Mapping[str, Any]) -> str:
    """One player's profile from the joined row."""
    status = "active" if row["active"] else "inactive (run /activate)"
    queued = "in the queue" if row["queued_since"] is not None else "not queued"
    return (
        f"**{row['name']}**: {row['race']}, {row['country']} ({row['region']})\n"
        f"Rating {row['rating']} (#{row['rank']}), {row['wins']} wins / {row['losses']} losses\n"
        f"{status}, {queued}"
    )


def board_text(rows: Sequence[Mapping[str, Any]], results: int, region: str | None) -> str:
    """The top players, headed by how many results the standings include."""
    title = BOARD_HEADER.format(results=results) + (f" ({region})" if region else "")
    if not rows:
        return f"{title}\nNobody has played yet."
    lines = [
        f"{n}. {r['name']} ({r['race']}, {r['country']}): {r['rating']}"
        for n, r in enumerate(rows, 1)
    ]
    return "\n".join([title, *lines])
