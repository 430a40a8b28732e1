"""Request-body checks as Discord makes them: 50035 with field errors, 50006 empty."""

from __future__ import annotations

from typing import Any

from steadybot.constants import (
    AUTOCOMPLETE_MAX_CHOICES as MAX_AUTOCOMPLETE_CHOICES,
)
from steadybot.constants import (
    CUSTOM_ID_MAX_LENGTH as MAX_CUSTOM_ID,
)
from steadybot.constants import (
    EPHEMERAL_FLAG as EPHEMERAL,
)
from steadybot.constants import (
    MESSAGE_CONTENT_MAX_LENGTH as MAX_CONTENT_LENGTH,
)
from steadybot.constants import (
    MESSAGE_MAX_ACTION_ROWS as MAX_COMPONENT_ROWS,
)
from steadybot.constants import (
    MESSAGE_MAX_EMBEDS as MAX_EMBEDS,
)
from steadybot.constants import (
    MODAL_MAX_COMPONENTS as MAX_MODAL_ROWS,
)
from steadybot.constants import (
    MODAL_TITLE_MAX_LENGTH as MAX_MODAL_TITLE,
)
from steadybot.emulator.errors import EmulatedError, invalid_form

__all__ = ["check_callback", "check_message"]

JSON = dict[str, Any]


def check_message(body: object, *, prefix: str = "", create: bool = True) -> JSON:
    """Validate a message create/edit body; return it as a dict."""
    if not isinstance(body, dict):
        raise invalid_form({prefix.rstrip(".") or "_root": ("MODEL_TYPE_CONVERT", "Not an object")})
    errors: dict[str, tuple[str, str]] = {}
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        errors[prefix + "content"] = ("BASE_TYPE_STRING", "Must be a string.")
    elif isinstance(content, str) and len(content) > MAX_CONTENT_LENGTH:
        errors[prefix + "content"] = (
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_CONTENT_LENGTH} or fewer in length.",
        )
    embeds = body.get("embeds")
    if embeds is not None and (not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS):
        errors[prefix + "embeds"] = ("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer.")
    components = body.get("components")
    if components is not None:
        if not isinstance(components, list) or len(components) > MAX_COMPONENT_ROWS:
            errors[prefix + "components"] = (
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_COMPONENT_ROWS} or fewer in length.",
            )
        else:
            errors.update(_check_rows(components, prefix + "components"))
    flags = body.get("flags")
    if flags is not None and not isinstance(flags, int):
        errors[prefix + "flags"] = ("NUMBER_TYPE_COERCE", "Value is not int.")
    if errors:
        raise invalid_form(errors)
    if create and not (content or embeds or components):
        raise EmulatedError(400, 50006, "Cannot send an empty message")
    return body


def _check_rows(rows: list[Any], path: str) -> dict[str, tuple[str, str]]:
    errors: dict[str, tuple[str, str]] = {}
    for row_index, row in enumerate(rows):
        children = row.get("components") if isinstance(row, dict) else None
        if not isinstance(children, list):
            errors[f"{path}.{row_index}.components"] = ("BASE_TYPE_REQUIRED", "Required.")
            continue
        for index, child in enumerate(children):
            custom_id = child.get("custom_id") if isinstance(child, dict) else None
            if custom_id is None:
                continue  # link buttons have a url instead
            if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
                errors[f"{path}.{row_index}.components.{index}.custom_id"] = (
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {MAX_CUSTOM_ID} in length.",
                )
    return errors


def check_callback(body: object, interaction_type: int) -> tuple[int, JSON]:
    """Validate an interaction callback body; return (callback type, data)."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), int):
        raise invalid_form({"type": ("BASE_TYPE_REQUIRED", "This field is required")})
    kind: int = body["type"]
    data = body.get("data") or {}
    allowed = {
        2: {4, 5, 9},
        3: {4, 5, 6, 7, 9},
        4: {8},
        5: {4, 5, 6, 7},
    }.get(interaction_type, set())
    if kind not in allowed:
        raise EmulatedError(400, 40043, f"Interaction callback type {kind} is not allowed here")
    if kind in (4, 7):
        check_message(data, prefix="data.", create=kind == 4)
    elif kind == 5:
        flags = data.get("flags") if isinstance(data, dict) else None
        if flags not in (None, 0, EPHEMERAL):
            raise invalid_form({"data.flags": ("INVALID_FLAGS", "Only EPHEMERAL may be set.")})
    elif kind == 8:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or len(choices) > MAX_AUTOCOMPLETE_CHOICES:
            raise invalid_form(
                {"data.choices": ("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")}
            )
    elif kind == 9:
        _check_modal(data)
    return kind, data if isinstance(data, dict) else {}


def _check_modal(data: object) -> None:
    errors: dict[str, tuple[str, str]] = {}
    if not isinstance(data, dict):
        raise invalid_form({"data": ("MODEL_TYPE_CONVERT", "Not an object")})
    title, custom_id, rows = data.get("title"), data.get("custom_id"), data.get("components")
    if not isinstance(title, str) or not 1 <= len(title) <= MAX_MODAL_TITLE:
        errors["data.title"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        errors["data.custom_id"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_MODAL_ROWS:
        errors["data.components"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    if errors:
        raise invalid_form(errors)
