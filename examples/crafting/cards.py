"""What the board shows, and how a scenario reads it back from Discord's side.

The request card (the ``/craft request`` answer, in the channel), the notice its
requester gets for every change, and the public confirmation ("… claimed …") that the
cleanup job deletes later. Each carries a machine-readable tag (``#id vN state``) so the
crowd's checks judge the board from the emulator's snapshot, not from the bot's memory.
"""

from __future__ import annotations

import re
from typing import Any

from examples.crafting.store import CraftRequest, RequestState

__all__ = [
    "CONFIRMATION_MARK",
    "PROFESSIONS",
    "TAG",
    "card",
    "confirm_prompt",
    "confirmation",
    "notice",
    "short",
    "tag",
]

PROFESSIONS = {
    "blacksmith": ("⚒️", ["iron sword", "steel helm", "horseshoes"]),
    "alchemist": ("⚗️", ["healing potion", "fire oil", "antidote"]),
    "tailor": ("🧵", ["wool cloak", "silk gloves", "travel bag"]),
}
CONFIRMATION_MARK = "🔔"  # public confirmations start with it; the cleanup deletes them
TAG = re.compile(r"`#(\d+) v(\d+) (open|claimed|completed)`")  # on cards and notices
_STATE_LINE = {
    RequestState.OPEN: "🟢 open: waiting for a {profession}",
    RequestState.CLAIMED: "🟡 claimed by <@{crafter}>",
    RequestState.COMPLETED: "✅ completed by <@{crafter}>",
}


def tag(request: CraftRequest) -> str:
    return f"`#{request.id} v{request.version} {request.state.value}`"


def short(request: CraftRequest) -> str:
    return f"#{request.id[-4:]}"


def card(request: CraftRequest, requester_name: str) -> dict[str, Any]:
    """The request card: what, for whom, its state, and the buttons its state allows."""
    emoji, _ = PROFESSIONS[request.profession]
    state = _STATE_LINE[request.state].format(
        profession=request.profession, crafter=request.crafter_id
    )
    content = (
        f"{emoji} **{request.item}** for {requester_name} ({short(request)})\n"
        f"{state}\n{tag(request)}"
    )
    buttons: list[dict[str, Any]] = []
    if request.state is RequestState.OPEN:
        buttons.append(_button("Claim", f"craft:claim:{request.id}", style=1))
    elif request.state is RequestState.CLAIMED:
        buttons.append(_button("Complete", f"craft:complete:{request.id}", style=3))
        buttons.append(_button("Release", f"craft:release:{request.id}", style=2))
    components = [{"type": 1, "components": buttons}] if buttons else []
    return {"content": content, "components": components}


def notice(request: CraftRequest, why: str = "") -> str:
    """The requester's notice of one change."""
    state = _STATE_LINE[request.state].format(
        profession=request.profession, crafter=request.crafter_id
    )
    reason = f" ({why})" if why else ""
    return f"📣 Your request {short(request)} ({request.item}): {state}{reason} {tag(request)}"


def confirmation(request: CraftRequest, actor_id: str, what: str) -> str:
    """The public line the board posts for a change; deleted by the cleanup job."""
    return f"{CONFIRMATION_MARK} <@{actor_id}> {what} {request.item} ({short(request)})"


def confirm_prompt(request_id: str) -> list[dict[str, Any]]:
    """The components of the "are you sure?" answer to a claim: one Confirm button."""
    return [{"type": 1, "components": [_button("Confirm", f"craft:confirm:{request_id}", style=1)]}]


def _button(label: str, custom_id: str, *, style: int) -> dict[str, Any]:
    return {"type": 2, "style": style, "label": label, "custom_id": custom_id}
