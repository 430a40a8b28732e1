"""The Responder state machine: every transition, the exactly-once guarantee, fallbacks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from support import (
    CHANNEL_ID,
    MESSAGE_ID,
    TOKEN,
    autocomplete,
    command,
    component,
    harness,
    modal_submit,
)

from steadybot.constants import INTERACTION_TOKEN_LIFETIME, ErrorCode
from steadybot.errors import IllegalTransition, InteractionExpired
from steadybot.interactions.responder import ResponderState as S
from steadybot.interactions.sinks import HttpReplySink

WEBHOOK = "/webhooks/100000000000000001/" + TOKEN
ORIGINAL = WEBHOOK + "/messages/@original"


async def test_respond_in_pending_is_the_initial_message() -> None:
    h = harness()
    r = h.responder(command())
    assert await r.respond("hi", ephemeral=True) is None
    assert h.sink.bodies == [{"type": 4, "data": {"content": "hi", "flags": 64}}]
    assert r.state is S.MESSAGE_SENT
    assert h.discord.calls == []
    assert h.counters.snapshot().answered_directly == 1


async def test_respond_after_defer_edits_the_thinking_message_then_follows_up() -> None:
    h = harness()
    r = h.responder(command())
    assert await r.defer(ephemeral=True) is True
    assert h.sink.bodies == [{"type": 5, "data": {"flags": 64}}]
    assert r.state is S.DEFERRED_MESSAGE
    await r.respond("result", ephemeral=True)
    assert r.state is S.MESSAGE_SENT
    await r.respond("more")
    assert [(c.method, c.path) for c in h.discord.calls] == [
        ("PATCH", ORIGINAL),
        ("POST", WEBHOOK),
    ]
    # An edit cannot change flags; a follow-up carries its own.
    assert h.discord.calls[0].json == {"content": "result"}
    assert "Authorization" not in h.discord.calls[0].headers


async def test_second_defer_is_a_no_op_never_a_second_initial_response() -> None:
    h = harness()
    r = h.responder(command())
    await r.respond("first")
    assert await r.defer() is False
    assert await r.auto_defer(early=False) is False
    assert len(h.sink.bodies) == 1


async def test_component_defer_is_type_6_and_update_edits_the_message() -> None:
    h = harness()
    r = h.responder(component())
    await r.defer()
    assert h.sink.types == [6]
    assert r.state is S.DEFERRED_UPDATE
    await r.update("new text")
    assert r.state is S.MESSAGE_UPDATED
    await r.respond("just for you", ephemeral=True)
    assert [(c.method, c.path) for c in h.discord.calls] == [
        ("PATCH", ORIGINAL),
        ("POST", WEBHOOK),
    ]
    assert h.discord.calls[1].json == {"content": "just for you", "flags": 64}


async def test_component_defer_as_message_when_configured() -> None:
    h = harness(component_defer="message")
    r = h.responder(component())
    await r.defer()
    assert h.sink.types == [5]


async def test_update_in_pending_is_type_7() -> None:
    h = harness()
    r = h.responder(component())
    await r.update("picked", components=[])
    assert h.sink.bodies == [{"type": 7, "data": {"content": "picked", "components": []}}]
    assert r.state is S.MESSAGE_UPDATED


async def test_update_after_a_message_edits_the_component_message_with_the_bot_token() -> None:
    h = harness()
    r = h.responder(component())
    await r.respond("hello")
    await r.update("edited")
    (call,) = h.discord.calls
    assert (call.method, call.path) == ("PATCH", f"/channels/{CHANNEL_ID}/messages/{MESSAGE_ID}")
    assert call.headers["Authorization"].startswith("Bot ")


async def test_update_is_illegal_for_commands() -> None:
    h = harness()
    r = h.responder(command())
    with pytest.raises(IllegalTransition, match="PENDING"):
        await r.update("x")


async def test_followup_in_pending_sends_the_initial_message() -> None:
    h = harness()
    r = h.responder(command())
    await r.followup("hello")
    assert h.sink.types == [4]
    await r.followup("again")
    assert h.discord.paths("POST") == [WEBHOOK]


async def test_followup_after_type_5_posts_and_becomes_the_original() -> None:
    h = harness()
    r = h.responder(command())
    await r.defer()
    await r.followup("replaces the loading message")
    assert h.discord.paths() == [WEBHOOK]
    assert r.state is S.MESSAGE_SENT


async def test_edit_and_delete_original() -> None:
    h = harness()
    r = h.responder(command())
    with pytest.raises(IllegalTransition, match=r"edit_original.*PENDING"):
        await r.edit_original("x")
    await r.respond("v1")
    await r.edit_original("v2")
    await r.delete_original()
    assert [(c.method, c.path) for c in h.discord.calls] == [
        ("PATCH", ORIGINAL),
        ("DELETE", ORIGINAL),
    ]


async def test_modal_must_be_the_initial_response() -> None:
    h = harness()
    r = h.responder(command())
    fields = [{"type": 1, "components": [{"type": 4, "custom_id": "a", "label": "A", "style": 1}]}]
    await r.modal("form", "Apply", fields)
    assert h.sink.bodies[0]["type"] == 9
    assert r.state is S.MODAL_SENT
    with pytest.raises(IllegalTransition, match=r"respond.*MODAL_SENT"):
        await r.respond("too late")

    deferred = h.responder(command())
    await deferred.defer()
    with pytest.raises(IllegalTransition, match=r"modal.*DEFERRED_MESSAGE.*defer='never'"):
        await deferred.modal("form", "Apply", fields)

    with pytest.raises(IllegalTransition, match="modal"):
        await h.responder(modal_submit()).modal("form", "Apply", fields)


@pytest.mark.parametrize(
    ("custom_id", "title", "count"),
    [
        ("", "t", 1),
        ("x" * 101, "t", 1),
        ("id", "", 1),
        ("id", "t" * 46, 1),
        ("id", "t", 0),
        ("id", "t", 6),
    ],
)
async def test_modal_limits_are_checked_before_sending(
    custom_id: str, title: str, count: int
) -> None:
    h = harness()
    rows = [{"type": 1, "components": []}] * count
    with pytest.raises(ValueError, match="modal"):
        await h.responder(command()).modal(custom_id, title, rows)
    assert h.sink.bodies == []


async def test_autocomplete_choices_limit_and_late_answers() -> None:
    h = harness()
    r = h.responder(autocomplete())
    with pytest.raises(ValueError, match="25"):
        await r.autocomplete([{"name": str(i), "value": str(i)} for i in range(26)])
    await r.autocomplete([{"name": "abc", "value": "abc"}])
    assert h.sink.bodies == [{"type": 8, "data": {"choices": [{"name": "abc", "value": "abc"}]}}]
    late = h.responder(autocomplete())
    await h.clock.advance(3.5)
    await late.autocomplete([])
    assert len(h.sink.bodies) == 1
    with pytest.raises(IllegalTransition):
        await h.responder(command()).autocomplete([])


async def test_content_over_2000_characters_is_refused_before_sending() -> None:
    h = harness()
    with pytest.raises(ValueError, match="2000"):
        await h.responder(command()).respond("x" * 2001)
    assert h.sink.bodies == []


async def test_missed_window_falls_back_to_a_channel_message() -> None:
    h = harness()
    r = h.responder(command())
    await h.clock.advance(3.0)
    message = await r.respond("late answer")
    assert message is not None
    assert r.state is S.MISSED
    assert h.sink.bodies == []
    (call,) = h.discord.calls
    assert (call.method, call.path) == ("POST", f"/channels/{CHANNEL_ID}/messages")
    stats = h.counters.snapshot()
    assert (stats.missed_deadline, stats.fallbacks_delivered) == (1, 1)


async def test_missed_ephemeral_answer_goes_by_dm_never_in_public() -> None:
    h = harness()
    r = h.responder(command(), ephemeral=True)
    await h.clock.advance(10)
    await r.respond("private")
    assert h.discord.paths("POST") == [
        "/users/@me/channels",
        "/channels/700000000000000007/messages",
    ]
    assert h.discord.calls[1].json == {"content": "private"}


async def test_explicit_fallback_channel_wins() -> None:
    h = harness()
    r = h.responder(command(), ephemeral=True)
    r.fallback_channel_id = "800000000000000008"
    await h.clock.advance(10)
    await r.respond("see your channel")
    assert h.discord.paths() == ["/channels/800000000000000008/messages"]


async def test_expired_token_falls_back_and_is_counted() -> None:
    h = harness()
    r = h.responder(command())
    await r.defer()
    await h.clock.advance(INTERACTION_TOKEN_LIFETIME)
    await r.respond("after 15 minutes")
    assert r.state is S.EXPIRED
    assert h.discord.paths() == [f"/channels/{CHANNEL_ID}/messages"]
    stats = h.counters.snapshot()
    assert (stats.token_expired, stats.fallbacks_delivered) == (1, 1)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, ErrorCode.INVALID_WEBHOOK_TOKEN),
        (404, ErrorCode.UNKNOWN_WEBHOOK),
        (404, ErrorCode.UNKNOWN_INTERACTION),
    ],
)
async def test_discord_saying_the_token_is_dead_triggers_the_fallback(
    status: int, code: int
) -> None:
    h = harness()
    h.discord.fail[("POST", TOKEN)] = (status, code)
    r = h.responder(command())
    await r.respond("first")
    await r.followup("second")
    assert r.state is S.EXPIRED
    assert h.discord.paths() == [WEBHOOK, f"/channels/{CHANNEL_ID}/messages"]


async def test_no_fallback_means_a_counted_loud_loss(caplog: pytest.LogCaptureFixture) -> None:
    h = harness(fallback_to_channel=False)
    r = h.responder(command())
    await h.clock.advance(4)
    with caplog.at_level(logging.ERROR), pytest.raises(InteractionExpired):
        await r.respond("lost")
    assert h.counters.snapshot().undeliverable == 1
    assert "undeliverable" in caplog.text
    assert TOKEN not in caplog.text


async def test_closed_http_reply_counts_as_missed_and_falls_back() -> None:
    h = harness()
    h.sink.reject = True
    r = h.responder(command())
    await r.respond("hello")
    assert r.state is S.MISSED
    assert h.discord.paths() == [f"/channels/{CHANNEL_ID}/messages"]


async def test_update_after_the_token_died_edits_with_the_bot_token() -> None:
    h = harness()
    r = h.responder(component())
    await h.clock.advance(5)
    await r.update("reset")
    assert h.discord.paths("PATCH") == [f"/channels/{CHANNEL_ID}/messages/{MESSAGE_ID}"]
    assert h.counters.snapshot().fallbacks_delivered == 1


async def test_finish_answers_what_the_handler_left() -> None:
    h = harness()
    command_responder = h.responder(command())
    await command_responder.finish()
    assert h.sink.bodies[-1] == {"type": 4, "data": {"content": "✅ Done.", "flags": 64}}
    click = h.responder(component())
    await click.finish()
    assert h.sink.bodies[-1] == {"type": 6}
    thinking = h.responder(command())
    await thinking.defer()
    await thinking.finish()
    assert h.discord.calls[-1].json == {"content": "✅ Done."}
    assert thinking.state is S.MESSAGE_SENT
    assert h.counters.snapshot().unanswered_handlers == 2


async def test_a_delegated_answer_leaves_the_thinking_message_for_the_outbox() -> None:
    h = harness()
    deferred = h.responder(command())
    deferred.delegate_answer()
    await deferred.defer()
    assert deferred.finish_at_once() is True  # nothing owed: the outbox edits @original
    assert deferred.state is S.DEFERRED_MESSAGE
    # Still pending at the end (not deferred by the caller): deferred, never "done".
    pending = h.responder(component())  # a click would otherwise get a type 6
    pending.ephemeral_default = True  # the deferral carries the handler's default
    pending.delegate_answer()
    assert pending.finish_at_once() is False
    await pending.finish()
    assert h.sink.bodies == [{"type": 5}, {"type": 5, "data": {"flags": 64}}]
    assert pending.state is S.DEFERRED_MESSAGE
    assert h.discord.calls == []  # no done message written over either
    assert h.counters.snapshot().unanswered_handlers == 0


async def test_illegal_transition_names_both_states() -> None:
    h = harness()
    r = h.responder(command())
    await r.respond("x")
    with pytest.raises(IllegalTransition, match=r"MODAL_SENT.*MESSAGE_SENT"):
        r._move(S.MODAL_SENT)


# --- the exactly-once guarantee under concurrency -------------------------------------


class GatedSink:
    """A sink whose send blocks until released, to force interleavings."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.gate = asyncio.Event()
        self.accepted = False

    async def send(self, body: dict[str, object]) -> None:
        self.bodies.append(body)
        self.accepted = True
        await self.gate.wait()

    def expire(self) -> None:
        return None


@pytest.mark.parametrize("first", ["defer", "respond", "update", "progress"])
@pytest.mark.parametrize("second", ["defer", "respond", "update", "progress"])
async def test_exactly_one_initial_response_in_every_forced_order(first: str, second: str) -> None:
    h = harness()
    sink = GatedSink()
    h.sink = sink  # type: ignore[assignment]
    r = h.responder(component())

    async def run(op: str) -> None:
        if op == "defer":
            await r.auto_defer(early=False)
        elif op == "respond":
            await r.respond("answer")
        elif op == "update":
            await r.update("updated")
        else:
            await r.progress().update("working")

    one = asyncio.create_task(run(first))
    await h.clock.settle()  # `first` holds the lock inside the sink now
    two = asyncio.create_task(run(second))
    await h.clock.settle()
    assert len(sink.bodies) == 1
    sink.gate.set()
    await asyncio.gather(one, two)
    await h.clock.advance(2)  # let a throttled progress write happen
    assert len(sink.bodies) == 1, sink.bodies
    # Nothing the second operation did was an initial response again.
    assert all("/callback" not in c.path for c in h.discord.calls)


async def test_progress_is_throttled_and_never_overwrites_the_answer() -> None:
    h = harness(progress_interval=1.0)
    r = h.responder(command())
    progress = r.progress()
    await progress.update("step 1")
    await h.clock.settle()
    assert h.sink.types == [5]
    assert [c.json for c in h.discord.calls] == [{"content": "step 1"}]
    await progress.update("step 2")
    await progress.update("step 3")
    await h.clock.settle()
    assert len(h.discord.calls) == 1  # coalesced until the interval has passed
    await h.clock.advance(1.0)
    assert [c.json for c in h.discord.calls][-1] == {"content": "step 3"}
    await progress.update("step 4")  # pending when the answer goes out
    await r.respond("final")
    await h.clock.advance(5)
    assert h.discord.calls[-1].json == {"content": "final"}
    assert r.state is S.MESSAGE_SENT
    assert h.counters.snapshot().progress_edits == 2


async def test_progress_on_a_component_uses_one_followup_then_the_answer_replaces_it() -> None:
    h = harness()
    r = h.responder(component(), ephemeral=True)
    await r.defer()
    progress = r.progress()
    await progress.update("working")
    await h.clock.settle()
    await h.clock.advance(1.0)
    await progress.update("still working")
    await h.clock.advance(1.0)
    await r.respond("done")
    methods = [(c.method, c.path.replace(WEBHOOK, "W")) for c in h.discord.calls]
    assert methods[0] == ("POST", "W")
    assert all(m == "PATCH" and p.startswith("W/messages/") for m, p in methods[1:])
    assert h.discord.calls[-1].json == {"content": "done"}


async def test_the_state_lock_is_fifo_and_survives_a_cancelled_waiter() -> None:
    h = harness()
    r = h.responder(command())
    order: list[str] = []
    gate = asyncio.Event()

    async def hold(name: str) -> None:
        async with r._locked():
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(hold("first"))
    await h.clock.settle()
    second = asyncio.create_task(hold("second"))
    third = asyncio.create_task(hold("third"))
    fourth = asyncio.create_task(hold("fourth"))
    await h.clock.settle()
    third.cancel()
    gate.set()
    await asyncio.gather(first, second, fourth)
    assert third.cancelled()
    assert order == ["first", "second", "fourth"]
    assert not r._busy


async def test_no_rest_call_overtakes_the_http_reply_that_creates_the_original() -> None:
    h = harness()
    written: list[str] = []
    gate = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        await gate.wait()  # a slow client: the reply takes a while to write
        written.append(str(message["type"]))

    h.sink = HttpReplySink(send)  # type: ignore[assignment]
    r = h.responder(command())
    progress = asyncio.create_task(r.progress().update("working"))
    await h.clock.settle()
    assert h.discord.paths("PATCH") == [], "the edit went out before the defer reply"
    gate.set()
    await h.clock.settle()
    await progress
    await h.clock.settle()
    assert written == ["http.response.start", "http.response.body"]
    assert [p.endswith("/messages/@original") for p in h.discord.paths("PATCH")] == [True]


async def test_an_answer_racing_a_slowly_written_defer_edits_after_the_reply() -> None:
    h = harness()
    gate = asyncio.Event()

    async def send(message: dict[str, object]) -> None:
        await gate.wait()

    h.sink = HttpReplySink(send)  # type: ignore[assignment]
    r = h.responder(command())
    defer = asyncio.create_task(r.auto_defer(early=False))  # the runtime's timer
    await h.clock.settle()
    answer = asyncio.create_task(r.respond("done"))  # the handler, in its own task
    await h.clock.settle()
    assert h.discord.paths("PATCH") == [], "the edit went out before the defer reply"
    gate.set()
    await asyncio.gather(defer, answer)
    assert [p.endswith("/messages/@original") for p in h.discord.paths("PATCH")] == [True]
    assert r.state is S.MESSAGE_SENT
