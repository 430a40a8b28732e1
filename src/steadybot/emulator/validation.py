"""Request-body checks as Discord makes them: 50035 with field errors, 50006 empty.

Field errors use Discord's own codes where clients have observed them
(``BASE_TYPE_BAD_LENGTH``, ``SET_TYPE_ALREADY_CONTAINS_VALUE``, ``NUMBER_TYPE_COERCE`` …)
and the paths Discord uses: list items are numbered, so a bad overwrite id is
``permission_overwrites.0.id``. Where no observed code is known (an overwrite naming no
role or member, a parent that is not a category) the code is the emulator's own, in the
same style; clients branch on 50035 and the path, not on these. A check returns the body
normalised (ids and permission bit sets as strings, defaults filled in), so a route
stores what Discord would return. Application command bodies are checked in
``commands.py``, with these building blocks.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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

__all__ = [
    "FieldErrors",
    "NewChannel",
    "as_object",
    "as_snowflake",
    "check_boolean",
    "check_bulk_delete",
    "check_callback",
    "check_channel_create",
    "check_message",
    "check_text",
]

JSON = dict[str, Any]
FieldErrors = dict[str, tuple[str, str]]

CHANNEL_NAME_MAX = 100
CHANNEL_TOPIC_MAX = 1024
GUILD_CHANNEL_TYPES = (0, 4)  # text and category: the kinds the emulator models
CATEGORY = 4
OVERWRITE_TYPES = (0, 1)  # role, member
BULK_DELETE_MIN, BULK_DELETE_MAX = 2, 100


def check_message(body: object, *, prefix: str = "", create: bool = True) -> JSON:
    """Validate a message create/edit body; return it as a dict."""
    if not isinstance(body, dict):
        raise invalid_form({prefix.rstrip("."): ("MODEL_TYPE_CONVERT", "Not an object")})
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
    errors.update(_check_nonce(body, prefix))
    if errors:
        raise invalid_form(errors)
    if create and not (content or embeds or components):
        raise EmulatedError(400, 50006, "Cannot send an empty message")
    return body


NONCE_MAX_LENGTH = 25


def _check_nonce(body: JSON, prefix: str) -> dict[str, tuple[str, str]]:
    """``nonce``: an int64 or a string of at most 25 characters; ``enforce_nonce``: bool."""
    errors: dict[str, tuple[str, str]] = {}
    nonce = body.get("nonce")
    if isinstance(nonce, bool) or not (
        nonce is None
        or (isinstance(nonce, int) and -(2**63) <= nonce < 2**63)
        or (isinstance(nonce, str) and len(nonce) <= NONCE_MAX_LENGTH)
    ):
        errors[prefix + "nonce"] = (
            "BASE_TYPE_BAD_LENGTH",
            f"Must be an integer or a string of {NONCE_MAX_LENGTH} or fewer characters.",
        )
    enforce = body.get("enforce_nonce")
    if enforce is not None and not isinstance(enforce, bool):
        errors[prefix + "enforce_nonce"] = ("BASE_TYPE_BOOLEAN", "Must be either true or false.")
    return errors


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


# --- building blocks (also used by commands.py) -----------------------------------------


def as_snowflake(value: object) -> str | None:
    """A snowflake (string or integer) as Discord's canonical string; None if it is none."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) < 1 << 64:
        return str(int(value))
    return None


def _bit_set(value: object) -> str | None:
    """A permission bit set (string or integer) as Discord's string; None if invalid."""
    return "0" if value is None else as_snowflake(value)


def check_text(errors: FieldErrors, path: str, value: object, low: int, high: int) -> None:
    """Record an error at ``path`` unless ``value`` is a string of ``low``-``high`` chars."""
    if value is None:
        errors[path] = ("BASE_TYPE_REQUIRED", "This field is required")
    elif not isinstance(value, str):
        errors[path] = ("BASE_TYPE_STRING", "Must be a string.")
    elif not low <= len(value) <= high:
        errors[path] = ("BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def check_boolean(errors: FieldErrors, path: str, value: object) -> None:
    """Record an error at ``path`` if ``value`` is given and not a boolean."""
    if value is not None and not isinstance(value, bool):
        errors[path] = ("BASE_TYPE_BOOLEAN", "Must be either true or false.")


def as_object(body: object, path: str = "") -> JSON:
    """``body`` if it is a JSON object, else 50035 at ``path`` (empty: the body itself)."""
    if not isinstance(body, dict):
        raise invalid_form(
            {path: ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")}
        )
    return body


# --- channels ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewChannel:
    """A validated ``POST /guilds/{id}/channels`` body."""

    name: str
    kind: int
    parent_id: str | None
    position: int | None
    permission_overwrites: list[JSON]
    topic: str | None
    nsfw: bool


def check_channel_create(
    body: object, *, categories: Collection[str], roles: Collection[str], members: Collection[str]
) -> NewChannel:
    """Validate a guild channel create body against the guild's categories, roles, members."""
    body = as_object(body)
    errors: FieldErrors = {}
    check_text(errors, "name", body.get("name"), 1, CHANNEL_NAME_MAX)
    kind = body.get("type")
    kind = 0 if kind is None else kind
    if isinstance(kind, bool) or kind not in GUILD_CHANNEL_TYPES:
        errors["type"] = ("BASE_TYPE_CHOICES", "Value must be one of (0, 4).")
    parent_id = body.get("parent_id")
    if parent_id is not None:
        parent_id = as_snowflake(parent_id)
        if kind == CATEGORY:
            errors["parent_id"] = ("CHANNEL_PARENT_INVALID", "A category cannot have a parent.")
        elif parent_id not in categories:
            errors["parent_id"] = ("CHANNEL_PARENT_INVALID", "Not a category of this guild.")
    position = body.get("position")
    if position is not None and (
        not isinstance(position, int) or isinstance(position, bool) or position < 0
    ):
        errors["position"] = ("NUMBER_TYPE_MIN", "int value should be greater than or equal to 0.")
    topic = body.get("topic")
    if topic is not None:
        check_text(errors, "topic", topic, 0, CHANNEL_TOPIC_MAX)
    check_boolean(errors, "nsfw", body.get("nsfw"))
    overwrites = _overwrites(body.get("permission_overwrites"), roles, members, errors)
    if errors:
        raise invalid_form(errors)
    return NewChannel(
        name=body["name"],
        kind=kind,
        parent_id=parent_id,
        position=position,
        permission_overwrites=overwrites,
        topic=topic if kind != CATEGORY else None,
        nsfw=bool(body.get("nsfw")),
    )


def _overwrites(
    value: object, roles: Collection[str], members: Collection[str], errors: FieldErrors
) -> list[JSON]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors["permission_overwrites"] = (
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        )
        return []
    overwrites: list[JSON] = []
    for index, item in enumerate(value):
        path = f"permission_overwrites.{index}"
        if not isinstance(item, dict):
            errors[path] = ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        target = as_snowflake(item.get("id"))
        kind = item.get("type")
        if kind is None:  # Discord infers it when the id names a role or a member
            kind = 0 if target in roles else 1
        if target is None:
            errors[f"{path}.id"] = ("BASE_TYPE_REQUIRED", "This field is required")
        elif isinstance(kind, bool) or kind not in OVERWRITE_TYPES:
            errors[f"{path}.type"] = ("BASE_TYPE_CHOICES", "Value must be one of (0, 1).")
        elif target not in (roles if kind == 0 else members):
            unknown_target = "Unknown Role" if kind == 0 else "Unknown Member"
            errors[f"{path}.id"] = ("UNKNOWN_OVERWRITE_TARGET", unknown_target)
        allow, deny = _bit_set(item.get("allow")), _bit_set(item.get("deny"))
        for name, bits in (("allow", allow), ("deny", deny)):
            if bits is None:
                errors[f"{path}.{name}"] = (
                    "NUMBER_TYPE_COERCE",
                    f'Value "{item.get(name)}" is not int.',
                )
        overwrites.append({"id": target, "type": kind, "allow": allow, "deny": deny})
    return overwrites


# --- bulk delete ------------------------------------------------------------------------


def check_bulk_delete(body: object) -> list[str]:
    """Validate ``{"messages": [ids]}``: 2 to 100 unique snowflakes; return the ids."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        raise invalid_form({"messages": ("BASE_TYPE_REQUIRED", "This field is required")})
    if len(messages) < BULK_DELETE_MIN:
        raise invalid_form(
            {"messages": ("BASE_TYPE_MIN_LENGTH", f"Must be {BULK_DELETE_MIN} or more in length.")}
        )
    if len(messages) > BULK_DELETE_MAX:
        raise invalid_form(
            {"messages": ("BASE_TYPE_MAX_LENGTH", f"Must be {BULK_DELETE_MAX} or fewer in length.")}
        )
    errors: FieldErrors = {}
    ids: list[str] = []
    for index, value in enumerate(messages):
        message_id = as_snowflake(value)
        if message_id is None:
            errors[f"messages.{index}"] = (
                "NUMBER_TYPE_COERCE",
                f'Value "{value}" is not snowflake.',
            )
        elif message_id in ids:
            errors[f"messages.{index}"] = (
                "SET_TYPE_ALREADY_CONTAINS_VALUE",
                "The set already contains this value.",
            )
        else:
            ids.append(message_id)
    if errors:
        raise invalid_form(errors)
    return ids
