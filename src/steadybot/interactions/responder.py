"""The Responder: one state machine and one lock per interaction.

Theory. Discord accepts exactly one *initial response* per interaction, within 3 s of
the event; a second one fails with 40060, a late one with 10062. After it, the token
allows follow-ups and edits of ``@original`` for 15 minutes. Which REST call a
"reply to the user" needs therefore depends on what has been sent so far. The
Responder owns that history as a :class:`ResponderState` and maps each operation to
the right call for the current state:

==================  ===============================  ===================================
state               respond()                        update() (component interactions)
==================  ===============================  ===================================
PENDING             initial type 4                   initial type 7
DEFERRED_MESSAGE    PATCH @original ("thinking…")    edit the component's message (bot)
DEFERRED_UPDATE     follow-up                        PATCH @original
MESSAGE_SENT        follow-up                        edit the component's message (bot)
MESSAGE_UPDATED     follow-up                        PATCH @original
MISSED / EXPIRED    fallback: channel message / DM   edit the component's message (bot)
MODAL_SENT …        IllegalTransition                IllegalTransition
==================  ===============================  ===================================

Every operation takes the one lock, re-reads the state (and the clocks) inside it and
acts; so an automatic defer racing the handler's own answer yields exactly one initial
response whatever the interleaving: whoever takes the lock second sees the first's
state and adapts (a defer becomes a no-op, an answer becomes an edit of the original).

Dead tokens are never a silent loss: when the 3 s window was missed, the 15 minutes
are over, or Discord says the token is dead (10062, 10015, 50027), an answer is
delivered through the bot token instead (the channel, or a DM for ephemeral answers,
by settings), counted, and logged; when no route is left, :class:`InteractionExpired`
is raised and the loss is counted and logged as an error.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from steadybot.clock import Clock
from steadybot.config import Settings
from steadybot.constants import (
    EPHEMERAL_FLAG,
    INITIAL_RESPONSE_DEADLINE,
    INTERACTION_TOKEN_LIFETIME,
    CallbackType,
)
from steadybot.errors import (
    DiscordHTTPError,
    IllegalTransition,
    InteractionExpired,
    RateLimitWait,
    TransportError,
)
from steadybot.interactions.bodies import (
    Choice,
    Component,
    Embed,
    autocomplete_body,
    message_body,
    modal_body,
    without_flags,
)
from steadybot.interactions.payload import (
    AnyInteraction,
    AutocompleteInteraction,
    ComponentInteraction,
    ModalSubmitInteraction,
    PingInteraction,
)
from steadybot.interactions.progress import ProgressReporter
from steadybot.interactions.sinks import InitialResponseRejected, InitialResponseSink
from steadybot.interactions.statistics import RuntimeCounters
from steadybot.models import Message
from steadybot.rest import RestClient

__all__ = ["Responder", "ResponderState"]

log = logging.getLogger("steadybot.responder")
T = TypeVar("T")


class ResponderState(enum.Enum):
    """Where an interaction is in its life."""

    PENDING = "pending"  # nothing sent; the 3 s window is open
    DEFERRED_MESSAGE = "deferred_message"  # type 5 sent: "thinking…" is the original
    DEFERRED_UPDATE = "deferred_update"  # type 6 sent: nothing visible, message editable
    MESSAGE_SENT = "message_sent"  # the original message exists (type 4, or deferred edit)
    MESSAGE_UPDATED = "message_updated"  # type 7 sent, or @original edited after type 6
    MODAL_SENT = "modal_sent"  # type 9 sent; the token carries nothing more
    AUTOCOMPLETE_SENT = "autocomplete_sent"  # type 8 sent; terminal
    MISSED = "missed"  # 3 s passed with no initial response: the token is dead
    EXPIRED = "expired"  # 15 min passed, or Discord said the token is dead

    # Members are singletons: hash by identity, in C, rather than Enum's Python-level
    # hash of the name; the hot path looks states up in the sets below several times.
    __hash__ = object.__hash__


S = ResponderState
_ACKNOWLEDGED = frozenset(
    {S.DEFERRED_MESSAGE, S.DEFERRED_UPDATE, S.MESSAGE_SENT, S.MESSAGE_UPDATED}
)
_DEAD = frozenset({S.MISSED, S.EXPIRED})
_TERMINAL = frozenset({S.MODAL_SENT, S.AUTOCOMPLETE_SENT})
_TRANSITIONS: Mapping[ResponderState, frozenset[ResponderState]] = {
    S.PENDING: frozenset(_ACKNOWLEDGED | _TERMINAL | {S.MISSED}),
    S.DEFERRED_MESSAGE: frozenset({S.MESSAGE_SENT, S.EXPIRED}),
    S.DEFERRED_UPDATE: frozenset({S.MESSAGE_UPDATED, S.EXPIRED}),
    S.MESSAGE_SENT: frozenset({S.EXPIRED}),
    S.MESSAGE_UPDATED: frozenset({S.EXPIRED}),
    S.MODAL_SENT: frozenset(),
    S.AUTOCOMPLETE_SENT: frozenset(),
    S.MISSED: frozenset(),
    S.EXPIRED: frozenset(),
}


class _TokenDead(Exception):
    """Internal: a token-bound call found the token dead."""


class Responder:
    """Answers one interaction, exactly once, by the right route for its state."""

    __slots__ = (  # one per interaction, on the hot path: slots make it cheaper
        "_acknowledged_at",
        "_answer_delegated",
        "_arrived_at",
        "_busy",
        "_clock",
        "_counters",
        "_first_answer_at",
        "_original",
        "_payload",
        "_progress",
        "_progress_message_id",
        "_rest",
        "_settings",
        "_sink",
        "_state",
        "_waiters",
        "ephemeral_default",
        "fallback_channel_id",
    )

    def __init__(
        self,
        payload: AnyInteraction,
        *,
        sink: InitialResponseSink,
        rest: RestClient,
        clock: Clock,
        settings: Settings,
        counters: RuntimeCounters,
        arrived_at: float,
        ephemeral: bool = False,
    ) -> None:
        if isinstance(payload, PingInteraction):
            raise ValueError("PING is answered by the front door, not a Responder")
        self._payload = payload
        self._sink = sink
        self._rest = rest
        self._clock = clock
        self._settings = settings
        self._counters = counters
        self._arrived_at = arrived_at
        self.ephemeral_default = ephemeral  # answers are ephemeral unless told otherwise
        self._state = ResponderState.PENDING
        # The lock's state lives here, not in a lock object pointing back at us: no
        # reference cycle per interaction for the garbage collector to chase.
        self._busy = False
        self._waiters: collections.deque[asyncio.Future[None]] | None = None
        self._first_answer_at: float | None = None
        self._acknowledged_at: float | None = None
        self._original: Message | None = None
        self._progress: ProgressReporter | None = None
        self._progress_message_id: str | None = None
        self.fallback_channel_id: str | None = None
        """Where answers go once the token is dead; the interaction's channel if unset
        (public answers) or a DM (ephemeral ones)."""
        self._answer_delegated = False  # the outbox owes the answer (delegate_answer)

    # --- introspection --------------------------------------------------------------

    @property
    def state(self) -> ResponderState:
        """The current state (clocks are applied on the next operation)."""
        return self._state

    @property
    def arrived_at(self) -> float:
        """Monotonic time the request arrived; every deadline counts from here."""
        return self._arrived_at

    @property
    def acknowledged_at(self) -> float | None:
        """Monotonic time the initial response (answer or defer) went out, if it did."""
        return self._acknowledged_at

    @property
    def first_answer_at(self) -> float | None:
        """Monotonic time of the handler's first answering call, if any."""
        return self._first_answer_at

    @property
    def token_deadline(self) -> float:
        """Monotonic time after which the token must not be used."""
        return self._arrived_at + INTERACTION_TOKEN_LIFETIME - self._settings.token_expiry_margin

    @property
    def acknowledged(self) -> bool:
        """Whether an initial response went out."""
        return self._state in _ACKNOWLEDGED or self._state in _TERMINAL

    # --- operations -----------------------------------------------------------------

    def respond(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        ephemeral: bool | None = None,
        allowed_mentions: Mapping[str, object] | None = None,
        fallback_channel_id: str | None = None,
    ) -> Coroutine[Any, Any, Message | None]:
        """Answer the user (await it): the initial message, the deferred original, or a
        follow-up. The result is the message when Discord returned one (not for an
        initial response sent as the HTTP reply).
        """
        return self._answer(
            "respond",
            content,
            embeds,
            components,
            ephemeral,
            allowed_mentions,
            fallback_channel_id,
            as_followup=False,
        )

    async def followup(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        ephemeral: bool | None = None,
        allowed_mentions: Mapping[str, object] | None = None,
        fallback_channel_id: str | None = None,
    ) -> Message | None:
        """Send a new message for this interaction (the initial one if none was sent)."""
        return await self._answer(
            "followup",
            content,
            embeds,
            components,
            ephemeral,
            allowed_mentions,
            fallback_channel_id,
            as_followup=True,
        )

    async def update(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
    ) -> Message | None:
        """Edit the message the component sits on (type 7, or an edit after a defer)."""
        self._mark_answer()
        message = self._source_message()
        if message is None:
            raise IllegalTransition(
                "update", self._state.name, "only component interactions carry a message"
            )
        body = message_body(
            content, embeds=embeds, components=components, ephemeral=False, allowed_mentions=None
        )
        async with self._locked():
            state = self._state
            if state is S.PENDING:
                await self._send_initial(CallbackType.UPDATE_MESSAGE, body, S.MESSAGE_UPDATED)
                if self._state is S.MESSAGE_UPDATED:
                    self._counters.add("answered_directly")
                    return None
            elif state in (S.DEFERRED_UPDATE, S.MESSAGE_UPDATED):
                try:
                    edited = await self._token_call(
                        lambda: self._rest.edit_webhook_message(
                            self._payload.application_id,
                            self._payload.token,
                            body,
                            deadline=self.token_deadline,
                        )
                    )
                except _TokenDead:
                    pass
                else:
                    if state is S.DEFERRED_UPDATE:
                        self._move(S.MESSAGE_UPDATED)
                    return edited
            elif state in _TERMINAL:
                raise IllegalTransition("update", state.name)
            # The token cannot (or no longer) reach the message: edit it with the bot token.
            return await self._edit_by_bot(message, body, "update")

    async def defer(self, *, ephemeral: bool | None = None, update: bool | None = None) -> bool:
        """Acknowledge now and answer later; returns False when already acknowledged.

        ``update`` picks type 6 (edit the component's message later) over type 5
        ("thinking…"); by default components use the ``component_defer`` setting.
        """
        return await self._defer(ephemeral=ephemeral, update=update, reason="deferred_explicitly")

    async def edit_original(
        self,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
    ) -> Message | None:
        """Edit the original response (after a defer, an answer or an update)."""
        self._mark_answer()
        body = message_body(
            content, embeds=embeds, components=components, ephemeral=False, allowed_mentions=None
        )
        async with self._locked():
            self._close_progress()
            state = self._state
            if state is S.PENDING:
                raise IllegalTransition("edit_original", state.name, "nothing sent yet; respond()")
            if state in _TERMINAL:
                raise IllegalTransition("edit_original", state.name)
            if state in _ACKNOWLEDGED:
                try:
                    edited = await self._token_call(
                        lambda: self._rest.edit_webhook_message(
                            self._payload.application_id,
                            self._payload.token,
                            body,
                            deadline=self.token_deadline,
                        )
                    )
                except _TokenDead:
                    pass
                else:
                    if state is S.DEFERRED_MESSAGE:
                        self._move(S.MESSAGE_SENT)
                    elif state is S.DEFERRED_UPDATE:
                        self._move(S.MESSAGE_UPDATED)
                    self._original = edited
                    return edited
            if self._original is not None and not self._original.flags & 64:
                return await self._edit_by_bot(self._original, body, "edit_original")
            return await self._fallback(body, ephemeral=self.ephemeral_default, channel_id=None)

    async def delete_original(self) -> None:
        """Delete the original response."""
        async with self._locked():
            self._close_progress()
            state = self._state
            if state is S.PENDING or state in _TERMINAL:
                raise IllegalTransition("delete_original", state.name)
            if state in _ACKNOWLEDGED:
                try:
                    await self._token_call(
                        lambda: self._rest.delete_webhook_message(
                            self._payload.application_id,
                            self._payload.token,
                            deadline=self.token_deadline,
                        )
                    )
                except _TokenDead:
                    pass
                else:
                    return
            original = self._original
            if original is None or not original.channel_id:
                self._counters.add("undeliverable")
                raise InteractionExpired("the token is dead and the original message is unknown")
            await self._rest.delete_message(original.channel_id, original.id)

    async def modal(self, custom_id: str, title: str, components: Sequence[Component]) -> None:
        """Open a modal; it must be the initial response (register with defer='never')."""
        self._mark_answer()
        data = modal_body(custom_id, title, components)
        async with self._locked():
            state = self._state
            if isinstance(self._payload, ModalSubmitInteraction | AutocompleteInteraction):
                raise IllegalTransition("modal", state.name, "not for modal submits/autocomplete")
            if state in _DEAD:
                self._counters.add("undeliverable")
                raise InteractionExpired("the 3 s window closed before the modal was opened")
            if state is not S.PENDING:
                raise IllegalTransition(
                    "modal", state.name, "a modal must be the initial response: defer='never'"
                )
            await self._send_initial(CallbackType.MODAL, data, S.MODAL_SENT)

    async def autocomplete(self, choices: Sequence[Choice]) -> None:
        """Offer autocomplete choices (at most 25); late answers are dropped quietly."""
        self._mark_answer()
        data = autocomplete_body(choices)
        async with self._locked():
            if not isinstance(self._payload, AutocompleteInteraction):
                raise IllegalTransition("autocomplete", self._state.name, "not an autocomplete")
            if self._state is not S.PENDING:
                # The user has typed on; a late list of choices is useless, not an error.
                log.debug("autocomplete answer dropped in state %s", self._state.name)
                return
            await self._send_initial(
                CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT, data, S.AUTOCOMPLETE_SENT
            )

    def progress(self, *, interval: float | None = None) -> ProgressReporter:
        """A throttled progress reporter that edits the user-visible answer in place."""
        if self._progress is None:
            self._progress = ProgressReporter(
                self._write_progress,
                clock=self._clock,
                interval=interval or self._settings.progress_interval,
            )
        return self._progress

    # --- used by the runtime ----------------------------------------------------------

    async def auto_defer(self, *, early: bool) -> bool:
        """The runtime's defer at the defer point (or at once when ``early``)."""
        return await self._defer(
            ephemeral=None,
            update=None,
            reason="deferred_early" if early else "deferred_automatically",
        )

    def window_closed(self) -> None:
        """The 3 s window closed (a clock timer): if nothing was sent, stop the sink
        waiting; the state moves to MISSED on the next operation."""
        if self._state is S.PENDING:
            self._sink.expire()

    def delegate_answer(self) -> None:
        """The answer comes from elsewhere (the outbox edits ``@original`` later): after
        the handler, a pending interaction is deferred and "thinking…" is left for it,
        never replaced by the done message."""
        self._answer_delegated = True

    def finish_at_once(self) -> bool:
        """After the handler, when nothing is owed (answered, or past saving: no state
        leads back to one that owes): stop progress and return True; otherwise False
        and :meth:`finish` must run. Synchronous, for the hot path."""
        state = self._state
        # Owed, unless the outbox owes the "thinking…" its answer (delegate_answer); the
        # flag is read only after the state test, so an answered interaction skips it.
        if state in (S.PENDING, S.DEFERRED_MESSAGE) and not (
            self._answer_delegated and state is S.DEFERRED_MESSAGE
        ):
            return False
        self._close_progress()
        return True

    async def finish(self) -> None:
        """After the handler: acknowledge what it left unanswered, stop progress."""
        if self.finish_at_once():
            return
        async with self._locked():
            self._close_progress()
            state = self._state
            if state is S.PENDING:
                await self._finish_pending()
            elif state is S.DEFERRED_MESSAGE:
                self._counters.add("unanswered_handlers")
                log.warning("handler left 'thinking…' unanswered; writing the done message")
                body = {"content": self._settings.done_message}
                try:
                    await self._token_call(
                        lambda: self._rest.edit_webhook_message(
                            self._payload.application_id,
                            self._payload.token,
                            body,
                            deadline=self.token_deadline,
                        )
                    )
                    self._move(S.MESSAGE_SENT)
                except (_TokenDead, DiscordHTTPError) as exc:
                    log.warning("could not replace 'thinking…': %s", exc)

    async def _finish_pending(self) -> None:
        if self._answer_delegated and not isinstance(self._payload, AutocompleteInteraction):
            flags: dict[str, object] | None = (
                {"flags": EPHEMERAL_FLAG} if self.ephemeral_default else None
            )
            await self._send_initial(
                CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, flags, S.DEFERRED_MESSAGE
            )
            return
        if isinstance(self._payload, ComponentInteraction | ModalSubmitInteraction) and (
            self._source_message() is not None
        ):
            # A silent acknowledgement is a valid answer to a click.
            await self._send_initial(CallbackType.DEFERRED_UPDATE_MESSAGE, None, S.DEFERRED_UPDATE)
            return
        self._counters.add("unanswered_handlers")
        if isinstance(self._payload, AutocompleteInteraction):
            data = autocomplete_body([])
            await self._send_initial(
                CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT, data, S.AUTOCOMPLETE_SENT
            )
            return
        log.warning("handler returned without answering; sending the done message")
        body = message_body(
            self._settings.done_message,
            embeds=None,
            components=None,
            ephemeral=True,
            allowed_mentions=None,
        )
        await self._send_initial(CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, body, S.MESSAGE_SENT)

    # --- internals --------------------------------------------------------------------

    async def _answer(
        self,
        operation: str,
        content: str | None,
        embeds: Sequence[Embed] | None,
        components: Sequence[Component] | None,
        ephemeral: bool | None,
        allowed_mentions: Mapping[str, object] | None,
        fallback_channel_id: str | None,
        *,
        as_followup: bool,
    ) -> Message | None:
        self._mark_answer()
        is_ephemeral = self.ephemeral_default if ephemeral is None else ephemeral
        body = message_body(
            content,
            embeds=embeds,
            components=components,
            ephemeral=is_ephemeral,
            allowed_mentions=allowed_mentions,
        )
        if not self._try_lock():  # the lock, without a context-manager coroutine
            await self._wait_lock()
        try:
            progress_id = None
            if not as_followup:
                # The final answer replaces the progress message and stops progress.
                progress_id = self._progress_message_id
                if self._progress is not None:  # _close_progress(), inline: hot path
                    self._progress.close()
            state = self._state
            if state in _TERMINAL:
                raise IllegalTransition(operation, state.name, "the interaction is closed")
            if state is S.PENDING:
                await self._send_initial(
                    CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, body, S.MESSAGE_SENT
                )
                if self._state is S.MESSAGE_SENT:
                    self._counters.add("answered_directly")
                    return None
            elif state in _ACKNOWLEDGED:
                try:
                    return await self._token_call(
                        lambda: self._send_acknowledged(state, body, progress_id, as_followup)
                    )
                except _TokenDead:
                    pass
            return await self._fallback(
                body, ephemeral=is_ephemeral, channel_id=fallback_channel_id
            )
        finally:
            self._unlock()

    async def _send_acknowledged(
        self,
        state: ResponderState,
        body: dict[str, object],
        progress_id: str | None,
        as_followup: bool,
    ) -> Message:
        app_id, token = self._payload.application_id, self._payload.token
        if state is S.DEFERRED_MESSAGE and not as_followup:
            message = await self._rest.edit_webhook_message(
                app_id, token, without_flags(body), deadline=self.token_deadline
            )
            self._original = message
            self._move(S.MESSAGE_SENT)
            return message
        if progress_id is not None:
            self._progress_message_id = None
            return await self._rest.edit_webhook_message(
                app_id, token, without_flags(body), progress_id, deadline=self.token_deadline
            )
        message = await self._rest.create_followup(
            app_id, token, body, deadline=self.token_deadline
        )
        if state is S.DEFERRED_MESSAGE:
            # Discord turns the first follow-up after a type 5 into the original.
            self._original = message
            self._move(S.MESSAGE_SENT)
        return message

    async def _defer(self, *, ephemeral: bool | None, update: bool | None, reason: str) -> bool:
        async with self._locked():
            if self._state is not S.PENDING:
                return False
            if isinstance(self._payload, AutocompleteInteraction):
                return False  # Discord has no deferred autocomplete
            as_update = update
            if as_update is None:
                as_update = (
                    isinstance(self._payload, ComponentInteraction)
                    and self._settings.component_defer == "update"
                )
            if as_update and self._source_message() is None:
                raise IllegalTransition("defer(update=True)", self._state.name, "no message")
            is_ephemeral = self.ephemeral_default if ephemeral is None else ephemeral
            if as_update:
                await self._send_initial(
                    CallbackType.DEFERRED_UPDATE_MESSAGE, None, S.DEFERRED_UPDATE
                )
            else:
                data = {"flags": 64} if is_ephemeral else None
                await self._send_initial(
                    CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, data, S.DEFERRED_MESSAGE
                )
            if self._state in _ACKNOWLEDGED:
                self._counters.add(reason)
                return True
            return False

    async def _send_initial(
        self, kind: CallbackType, data: Mapping[str, object] | None, target: ResponderState
    ) -> None:
        """Send the one initial response; on a closed window move to MISSED instead."""
        body: dict[str, object] = {"type": int(kind)}  # int(): Enum.value is a property
        if data is not None:
            body["data"] = data  # built for this call by the caller: no copy needed
        try:
            await self._sink.send(body)
        except InitialResponseRejected as exc:
            log.warning("initial response rejected: %s", exc)
            self._miss()
            return
        except asyncio.CancelledError:
            # Cancelled while the accepted reply was being written: it did go out.
            if self._sink.accepted:
                self._move(target)
                self._acknowledged_at = self._clock.monotonic()
            raise
        self._move(target)
        self._acknowledged_at = self._clock.monotonic()

    async def _token_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run a token-bound REST call; a dead token becomes :class:`_TokenDead`."""
        if self._clock.monotonic() >= self.token_deadline:
            self._expire("the 15-minute token lifetime is over")
            raise _TokenDead
        try:
            result = await call()
        except DiscordHTTPError as exc:
            if exc.token_is_dead:
                self._expire(f"Discord answered {exc.status}/{exc.code}")
                raise _TokenDead from None
            self._counters.add("followups_failed")
            raise
        except (TransportError, RateLimitWait):
            self._counters.add("followups_failed")
            raise
        self._counters.add("followups_delivered")
        return result

    async def _fallback(
        self, body: dict[str, object], *, ephemeral: bool, channel_id: str | None
    ) -> Message:
        """Deliver an answer through the bot token once the interaction token is dead."""
        settings = self._settings
        target = channel_id or self.fallback_channel_id
        author = self._payload.author
        if target is None and settings.fallback_to_channel:
            if not ephemeral:
                target = self._payload.channel_id
            elif settings.fallback_dm_for_ephemeral and author is not None:
                target = (await self._rest.create_dm(author.id)).id
        if target is None or not settings.fallback_to_channel:
            self._counters.add("undeliverable")
            log.error(
                "answer to interaction %s undeliverable: token dead and no fallback route",
                self._payload.id,
            )
            raise InteractionExpired(f"interaction {self._payload.id}: token dead, no fallback")
        message = await self._rest.create_message(target, without_flags(body))
        self._counters.add("fallbacks_delivered")
        log.warning(
            "interaction %s answered through the bot token (state %s)",
            self._payload.id,
            self._state.name,
        )
        return message

    async def _edit_by_bot(self, message: Message, body: dict[str, object], op: str) -> Message:
        channel_id = message.channel_id or self._payload.channel_id
        if message.flags & 64 or not channel_id:
            self._counters.add("undeliverable")
            raise InteractionExpired(f"{op}(): an ephemeral message needs a live token")
        edited = await self._rest.edit_message(channel_id, message.id, without_flags(body))
        if self._state in _DEAD:
            self._counters.add("fallbacks_delivered")
        return edited

    async def _write_progress(self, text: str) -> None:
        """One progress edit (called by the reporter); best effort, never raises."""
        async with self._locked():
            # A final answer closes the reporter under this lock: a write that waited
            # for the lock meanwhile must not overwrite that answer.
            closed = self._progress is None or self._progress.closed
            if closed or self._state in _DEAD | _TERMINAL:
                return
            if self._state is S.PENDING:
                # The first progress defers ("thinking…"), which the edit then fills.
                data = {"flags": EPHEMERAL_FLAG} if self.ephemeral_default else None
                await self._send_initial(
                    CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, data, S.DEFERRED_MESSAGE
                )
                if self.state is not S.DEFERRED_MESSAGE:  # the property: re-read after await
                    return
                self._counters.add("deferred_explicitly")
            try:
                await self._token_call(lambda: self._progress_edit(text))
            except (_TokenDead, DiscordHTTPError, InteractionExpired) as exc:
                log.warning("progress update dropped: %s", exc)
                return
            self._counters.add("progress_edits")

    async def _progress_edit(self, text: str) -> None:
        app_id, token = self._payload.application_id, self._payload.token
        body: dict[str, object] = {"content": text}
        if self._state is S.DEFERRED_MESSAGE:
            await self._rest.edit_webhook_message(app_id, token, body, deadline=self.token_deadline)
        elif self._progress_message_id is None:
            if self.ephemeral_default:
                body["flags"] = EPHEMERAL_FLAG
            created = await self._rest.create_followup(
                app_id, token, body, deadline=self.token_deadline
            )
            self._progress_message_id = created.id
        else:
            await self._rest.edit_webhook_message(
                app_id, token, body, self._progress_message_id, deadline=self.token_deadline
            )

    def _close_progress(self) -> None:
        """A final answer supersedes any progress not yet written."""
        if self._progress is not None:
            self._progress.close()

    def _locked(self) -> _StateLock:
        return _StateLock(self)

    def _try_lock(self) -> bool:
        """Take the lock if it is free (and apply the clocks); never waits."""
        if self._busy or self._waiters:
            return False
        self._busy = True
        self._apply_clocks()
        return True

    async def _wait_lock(self) -> None:
        """Queue for the lock (FIFO); the releaser hands it over, then the clocks apply."""
        if self._waiters is None:
            self._waiters = collections.deque()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # handed over: _busy stays True
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._unlock()  # handed over, but we are leaving: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        self._apply_clocks()

    def _unlock(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # ownership passes straight to the next waiter
                return
        self._busy = False

    def _apply_clocks(self) -> None:
        now = self._clock.monotonic()
        if self._state is S.PENDING and now >= self._arrived_at + INITIAL_RESPONSE_DEADLINE:
            self._miss()
        elif self._state in _ACKNOWLEDGED and now >= self.token_deadline:
            self._expire("the 15-minute token lifetime is over")

    def _miss(self) -> None:
        if self._state is S.PENDING:
            self._move(S.MISSED)
            self._counters.add("missed_deadline")
            log.warning("interaction %s missed the 3 s initial-response window", self._payload.id)

    def _expire(self, reason: str) -> None:
        if self._state in _ACKNOWLEDGED:
            self._move(S.EXPIRED)
            self._counters.add("token_expired")
            log.warning("interaction %s token dead: %s", self._payload.id, reason)

    def _move(self, target: ResponderState) -> None:
        if target not in _TRANSITIONS[self._state]:
            raise IllegalTransition(f"transition to {target.name}", self._state.name)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("interaction %s: %s -> %s", self._payload.id, self._state.name, target.name)
        self._state = target

    def _mark_answer(self) -> None:
        if self._first_answer_at is None:
            self._first_answer_at = self._clock.monotonic()

    def _source_message(self) -> Message | None:
        payload = self._payload
        if isinstance(payload, ComponentInteraction | ModalSubmitInteraction):
            return payload.message
        return None


class _StateLock:
    """``async with``: take the responder's lock, then apply the clocks to its state.

    A FIFO lock of our own rather than :class:`asyncio.Lock`: nearly every interaction
    takes it uncontended once or twice on the hot path, and then it costs one flag and
    no extra coroutine (:meth:`Responder._answer` even skips this object then); only
    contention makes futures. The state (``_busy``, ``_waiters``) is the responder's;
    this object lives for one ``async with``.
    """

    __slots__ = ("_responder",)

    def __init__(self, responder: Responder) -> None:
        self._responder = responder

    async def __aenter__(self) -> None:
        r = self._responder
        if not r._try_lock():
            await r._wait_lock()

    async def __aexit__(self, *exc_info: object) -> None:
        self._responder._unlock()
