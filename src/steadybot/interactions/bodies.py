"""Building and checking what the responder sends.

Discord rejects an oversized or malformed body with 50035 after a round trip; a bot
author learns more from a :class:`ValueError` raised here, before anything is sent,
naming the field and Discord's limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from steadybot.constants import (
    AUTOCOMPLETE_MAX_CHOICES,
    CUSTOM_ID_MAX_LENGTH,
    EPHEMERAL_FLAG,
    MESSAGE_CONTENT_MAX_LENGTH,
    MODAL_MAX_COMPONENTS,
    MODAL_TITLE_MAX_LENGTH,
)

__all__ = [
    "MAX_ACTION_ROWS",
    "MAX_EMBEDS",
    "Choice",
    "Component",
    "Embed",
    "autocomplete_body",
    "message_body",
    "modal_body",
    "without_flags",
]

MAX_EMBEDS = 10
MAX_ACTION_ROWS = 5

Embed = Mapping[str, object]
Component = Mapping[str, object]
Choice = Mapping[str, object]


def message_body(
    content: str | None,
    *,
    embeds: Sequence[Embed] | None,
    components: Sequence[Component] | None,
    ephemeral: bool,
    allowed_mentions: Mapping[str, object] | None,
) -> dict[str, object]:
    """A message create/edit body, checked against Discord's limits."""
    body: dict[str, object] = {}
    if content is not None:
        if len(content) > MESSAGE_CONTENT_MAX_LENGTH:
            raise ValueError(
                f"content is {len(content)} characters; Discord allows {MESSAGE_CONTENT_MAX_LENGTH}"
            )
        body["content"] = content
    if embeds is not None:
        if len(embeds) > MAX_EMBEDS:
            raise ValueError(f"{len(embeds)} embeds; Discord allows {MAX_EMBEDS}")
        body["embeds"] = [dict(embed) for embed in embeds]
    if components is not None:
        if len(components) > MAX_ACTION_ROWS:
            raise ValueError(f"{len(components)} action rows; Discord allows {MAX_ACTION_ROWS}")
        body["components"] = [dict(row) for row in components]
    if allowed_mentions is not None:
        body["allowed_mentions"] = dict(allowed_mentions)
    if ephemeral:
        body["flags"] = EPHEMERAL_FLAG
    return body


def without_flags(body: Mapping[str, object]) -> dict[str, object]:
    """``body`` minus ``flags``: edits cannot change them, channel messages cannot be
    ephemeral."""
    return {key: value for key, value in body.items() if key != "flags"}


def modal_body(custom_id: str, title: str, components: Sequence[Component]) -> dict[str, object]:
    """The ``data`` of a MODAL callback, checked against Discord's limits."""
    if not 1 <= len(custom_id) <= CUSTOM_ID_MAX_LENGTH:
        raise ValueError(f"modal custom_id must be 1-{CUSTOM_ID_MAX_LENGTH} characters")
    if not 1 <= len(title) <= MODAL_TITLE_MAX_LENGTH:
        raise ValueError(f"modal title must be 1-{MODAL_TITLE_MAX_LENGTH} characters")
    if not 1 <= len(components) <= MODAL_MAX_COMPONENTS:
        raise ValueError(f"a modal holds 1-{MODAL_MAX_COMPONENTS} components")
    return {"custom_id": custom_id, "title": title, "components": [dict(c) for c in components]}


def autocomplete_body(choices: Sequence[Choice]) -> dict[str, object]:
    """The ``data`` of an AUTOCOMPLETE_RESULT callback (at most 25 choices)."""
    if len(choices) > AUTOCOMPLETE_MAX_CHOICES:
        raise ValueError(
            f"{len(choices)} autocomplete choices; Discord allows {AUTOCOMPLETE_MAX_CHOICES}"
        )
    return {"choices": [dict(choice) for choice in choices]}
