"""The crafting crowd: members post requests, crafters race, double-click and forget.

Setup: three crafters per profession join it through the bot (``/profession join``: a
role write, after the member cache was warmed); every other one is in fast mode. Then:

- requesters post one or two requests (``/craft request``) in random channels; a few
  try to claim one themselves (they must be refused: not their profession);
- crafters look at the board now and then (``/craft board``), pick among the newest
  open requests of their profession (so they race each other), claim (confirming when
  asked; some double-click), then complete, release, or forget the claim (the expiry
  job releases it).

The checks judge Discord's side (the emulator's snapshot), plus the bot's store for
"claimed twice": one claim per request, every change shown to its requester, no member
fetched one by one after the warm-up, crafters never refused and intruders never let
in, and every public confirmation deleted again.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from examples.crafting.board import DENIED
from examples.crafting.cards import CONFIRMATION_MARK, PROFESSIONS, TAG
from examples.crafting.store import RequestStore
from steadybot.crowd import Check, CrowdTarget, CrowdUser, RemoteEmulatorError
from steadybot.emulator import Snapshot
from steadybot.emulator.views import Action, InteractionView

__all__ = ["Card", "CraftingScenario", "subcommand"]

MEMBER_FETCH_ROUTE = "GET /guilds/{guild_id}/members/{user_id}"
_DENIED = DENIED.split("{", 1)[0]
_CLAIMED_BY = re.compile(r"claimed by <@(\d+)>")


@dataclass(frozen=True)
class Card:
    request_id: str
    message_id: str
    profession: str
    requester_id: str


def subcommand(sub: str, **values: str) -> list[dict[str, object]]:
    inner = [{"type": 3, "name": name, "value": value} for name, value in values.items()]
    return [{"type": 1, "name": sub, "options": inner}]


class CraftingScenario:
    """See the module docstring."""

    name = "crafting"
    users = 150
    seconds = 20.0
    crafters_per_profession = 3
    second_request_share = 0.3
    intruder_share = 0.1  # requesters who try to claim a request
    board_share = 0.3  # crafter rounds that start with /craft board
    double_click_share = 0.3
    forget_share = 0.15  # claims never completed: the expiry job releases them
    release_share = 0.1
    rounds = (3, 6)
    think = (0.3, 1.2)
    work = (0.3, 1.5)

    def __init__(self, fast_mode: set[str], stores: Sequence[RequestStore]) -> None:
        self.fast_mode = fast_mode  # the steadybot board's fast-mode list, set in setup
        self.stores = stores
        self._start_over()

    def _start_over(self) -> None:
        """Fresh state: one scenario object runs for steadybot, then for the baseline."""
        self.crafters: dict[str, str] = {}  # user → profession
        self.cards: list[Card] = []
        self.completed: set[str] = set()
        self.intruders: set[str] = set()

    async def setup(self, target: CrowdTarget) -> None:
        self._start_over()
        professions = list(PROFESSIONS)
        count = self.crafters_per_profession * len(professions)
        chosen = target.user_ids[1 : 1 + count]
        for index, user_id in enumerate(chosen):
            profession = professions[index % len(professions)]
            options = subcommand("join", profession=profession)
            await target.act(
                Action(kind="command", user_id=user_id, name="profession", options=options)
            )
            self.crafters[user_id] = profession
        # The operator's fast-mode list: every other crafter skips "are you sure?".
        self.fast_mode.clear()
        self.fast_mode.update(chosen[::2])

    async def user(self, user: CrowdUser) -> None:
        if user.id in self.crafters:
            await self._craft(user, self.crafters[user.id])
        else:
            await self._request(user)

    async def _request(self, user: CrowdUser) -> None:
        rng = user.rng
        await user.think(0.1, 1.0)
        for _ in range(2 if rng.random() < self.second_request_share else 1):
            profession = rng.choice(list(PROFESSIONS))
            item = rng.choice(PROFESSIONS[profession][1])
            channel_id = rng.choice(user.target.channel_ids)
            options = subcommand("request", profession=profession, item=item)
            view = await user.command("craft", options, channel_id=channel_id)
            if view.original_message_id is not None:
                self.cards.append(Card(view.id, view.original_message_id, profession, user.id))
            if rng.random() < self.intruder_share:
                card = rng.choice(self.cards)
                if await self._click(user, f"craft:claim:{card.request_id}", card.message_id):
                    self.intruders.add(user.id)
            await user.think(*self.think)

    async def _craft(self, user: CrowdUser, profession: str) -> None:
        rng = user.rng
        for _ in range(rng.randint(*self.rounds)):
            await user.think(*self.think)
            if rng.random() < self.board_share:
                await user.command("craft", subcommand("board", profession=profession))
            newest = [
                c
                for c in self.cards
                if c.profession == profession and c.request_id not in self.completed
            ][-3:]
            if not newest:
                continue
            card = rng.choice(newest)
            view = await self._click(user, f"craft:claim:{card.request_id}", card.message_id)
            if view is not None and view.original_message_id is not None:
                # Not in fast mode: the answer asks "are you sure?" with a Confirm button.
                await self._click(
                    user, f"craft:confirm:{card.request_id}", view.original_message_id
                )
            chance = rng.random()
            if chance < self.forget_share:
                continue
            await user.think(*self.work)
            action = "release" if chance < self.forget_share + self.release_share else "complete"
            clicked = await self._click(user, f"craft:{action}:{card.request_id}", card.message_id)
            if clicked is not None and action == "complete":
                self.completed.add(card.request_id)

    async def _click(
        self, user: CrowdUser, custom_id: str, message_id: str
    ) -> InteractionView | None:
        """A click (sometimes a double click); None when the button is not (or no
        longer) on the message, as for a user who cannot click what is not shown."""
        try:
            if user.rng.random() < self.double_click_share:
                views = await user.double_click(custom_id, message_id, user.rng.uniform(0.05, 0.3))
                return views[0]
            return await user.click(custom_id, message_id)
        except (ValueError, RemoteEmulatorError):
            return None

    # --- checks -----------------------------------------------------------------------

    def checks(self, snapshot: Snapshot, users: Sequence[CrowdUser]) -> dict[str, Check]:
        dms = set(snapshot.dm_channels.values())
        cards: dict[str, tuple[int, str]] = {}  # request → (version, state) shown on its card
        confirmations_left = 0
        for channel_id, messages in snapshot.messages.items():
            if channel_id in dms:
                continue
            for message in messages:
                content = message.get("content", "")
                confirmations_left += content.startswith(CONFIRMATION_MARK)
                found = TAG.search(content)
                if found:
                    cards[found.group(1)] = (int(found.group(2)), found.group(3))
        notices = self._notices(snapshot)
        twice = sorted(r for r, seen in notices.items() if _claimed_twice(seen))
        store = next((s for s in self.stores if any(r in s for r in cards)), RequestStore())
        store_twice = [r for r in store.claimed_twice() if r in cards]
        unshown = sorted(
            r
            for r, (version, _) in cards.items()
            if sorted(v for v, _, _ in notices.get(r, [])) != list(range(2, version + 1))
        )
        changes = sum(version - 1 for version, _ in cards.values())
        fetched = snapshot.statistics.requests_by_route.get(MEMBER_FETCH_ROUTE, 0)
        denied_crafters = sorted(
            u
            for u in self.crafters
            if any(_DENIED in m.get("content", "") for m in snapshot.ephemeral_messages(u))
        )
        intruded = sorted(
            r
            for r, seen in notices.items()
            for _, _, content in seen
            if (who := _CLAIMED_BY.search(content)) and who.group(1) not in self.crafters
        )
        failed = sum(i.outcome == "failed" for i in snapshot.interactions.values())
        claimed = sum(1 for seen in notices.values() for _, state, _ in seen if state == "claimed")
        return {
            "no request claimed twice": Check(
                not twice and not store_twice,
                f"{len(cards)} requests, {claimed} claims; claimed twice: {len(twice)} "
                f"(notices), {len(store_twice)} (store)",
            ),
            "every change shown to its requester": Check(
                not unshown,
                f"{changes} changes; {len(unshown)} requests with a change not shown",
            ),
            "no member fetched after warm-up": Check(
                fetched == 0, f"{fetched} one-by-one member fetches"
            ),
            "crafters let in, others kept out": Check(
                not denied_crafters and not intruded,
                f"{len(denied_crafters)} crafters refused, {len(intruded)} claims by "
                f"non-crafters ({len(self.intruders)} tried)",
            ),
            "no interaction failed": Check(
                failed == 0, f"{failed} of {len(snapshot.interactions)} failed"
            ),
            "confirmations cleaned up": Check(
                confirmations_left == 0,
                f"{confirmations_left} left, "
                f"{snapshot.statistics.messages_deleted} messages deleted",
            ),
        }

    def _notices(self, snapshot: Snapshot) -> dict[str, list[tuple[int, str, str]]]:
        """Per request: (version, state, text) of each notice its requester received,
        ephemeral or by DM."""
        found: dict[str, list[tuple[int, str, str]]] = {}
        requesters = {card.requester_id for card in self.cards}
        for user_id in requesters:
            messages: Iterable[dict[str, object]] = snapshot.ephemeral_messages(user_id)
            dm = snapshot.dm_channels.get(user_id)
            if dm is not None:
                messages = [*messages, *snapshot.channel_messages(dm)]
            for message in messages:
                content = str(message.get("content", ""))
                tag = TAG.search(content)
                if content.startswith("📣") and tag:
                    entry = (int(tag.group(2)), tag.group(3), content)
                    found.setdefault(tag.group(1), []).append(entry)
        return found


def _claimed_twice(seen: list[tuple[int, str, str]]) -> bool:
    states = [state for _, state, _ in sorted(seen)]
    return any(a == b == "claimed" for a, b in itertools.pairwise(states))
