"""The :class:`Outbox`: record side effects in the caller's transaction; the table's SQL.

A handler changes state and records what to tell the user in ONE transaction::

    async with db.transaction() as conn:
        await ledger.post(reservation.id, key=..., conn=conn)
        await bot.outbox.edit_original(conn, interaction, "Paid: 5 credits")

Both commit or neither does. The relay (:mod:`steadybot.outbox.relay`) then delivers
what was committed; the in-process wake-up makes that prompt, polling covers restarts
and other processes. Every statement about ``outbox_items`` lives here, so the relay
reads as a protocol and this module as its storage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from steadybot.clock import Clock
from steadybot.constants import INTERACTION_TOKEN_LIFETIME
from steadybot.interactions.bodies import Component, Embed, message_body
from steadybot.outbox.models import (
    DeliveryKind,
    DeliveryRoute,
    OutboxItem,
    OutboxRecord,
    OutboxState,
)
from steadybot.outbox.schema import OUTBOX_MIGRATIONS
from steadybot.outbox.settings import OutboxSettings
from steadybot.storage import Connection, Database, Dialect

if TYPE_CHECKING:
    from steadybot.interactions.context import Interaction

__all__ = ["ClaimedItem", "Outbox"]

_COLUMNS: Final = (
    "key, kind, state, payload, interaction_id, application_id, token, channel_id, user_id, "
    "ephemeral, fallback, fallback_channel_id, created_at, expires_at, next_attempt_at"
)
_INSERT: Final = (
    f"INSERT INTO outbox_items ({_COLUMNS}) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
    "ON CONFLICT (key) DO NOTHING"
)
_ACTIVE: Final = (OutboxState.PENDING.value, OutboxState.SENDING.value)


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """An item a relay claimed for one attempt (internal to the outbox: holds the token)."""

    id: int
    key: str
    kind: DeliveryKind
    payload: Mapping[str, Any]
    interaction_id: str | None
    application_id: str | None
    token: str | None = field(repr=False)
    channel_id: str | None
    user_id: str | None
    ephemeral: bool
    fallback: bool
    fallback_channel_id: str | None
    created_at: float
    expires_at: float | None
    attempts: int  # including this one
    claimed_at: float
    lease_until: float
    in_doubt: bool  # the previous claim ended in a crash (or a lapsed lease)
    previous_route: DeliveryRoute | None  # what that previous attempt was doing
    previous_claimed_at: float | None


def _route(value: object) -> DeliveryRoute | None:
    return DeliveryRoute(str(value)) if value else None


def _record(row: Mapping[str, Any]) -> OutboxRecord:
    return OutboxRecord(
        id=int(row["id"]),
        key=row["key"],
        kind=DeliveryKind(row["kind"]),
        state=OutboxState(row["state"]),
        payload=json.loads(row["payload"]),
        interaction_id=row["interaction_id"],
        channel_id=row["channel_id"],
        ephemeral=bool(row["ephemeral"]),
        attempts=int(row["attempts"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        delivered_via=_route(row["delivered_via"]),
        message_id=row["message_id"],
        dead_reason=row["dead_reason"],
        last_error=row["last_error"],
        in_doubt=int(row["in_doubt"]),
        resolution=row["resolution"],
    )


class Outbox:
    """Durable side effects on a :class:`Database`, delivered by an :class:`OutboxRelay`."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        settings: OutboxSettings | None = None,
    ) -> None:
        self.database = database
        self.clock: Clock = clock or database.clock
        self.settings = settings if settings is not None else OutboxSettings()
        self._wakeup: asyncio.Event | None = None  # made in the running loop
        self.enqueued = 0
        self.duplicates = 0

    async def migrate(self) -> list[int]:
        """Create the outbox table if needed (also possible via ``open_database``)."""
        return await self.database.migrate(OUTBOX_MIGRATIONS)

    # --- recording -----------------------------------------------------------------------

    async def enqueue(self, conn: Connection, item: OutboxItem) -> bool:
        """Record ``item`` in the caller's transaction ``conn``. Returns False (and
        changes nothing) when an item with its key exists already."""
        now = self.clock.time()
        inserted = await conn.execute(
            _INSERT,
            item.key,
            str(item.kind),
            str(OutboxState.PENDING),
            json.dumps(dict(item.payload), separators=(",", ":")),
            item.interaction_id,
            item.application_id,
            item.token,
            item.channel_id,
            item.user_id,
            item.ephemeral,
            item.fallback,
            item.fallback_channel_id,
            now,
            item.expires_at,
            now,
        )
        if inserted:
            self.enqueued += 1
            # Wake the relay now; on PostgreSQL the row is visible only after the
            # caller commits, which the relay covers by looking again shortly.
            self.notify()
        else:
            self.duplicates += 1
        return bool(inserted)

    async def edit_original(
        self,
        conn: Connection,
        interaction: Interaction,
        content: str | None = None,
        *,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        key: str | None = None,
        fallback: bool = True,
    ) -> OutboxItem:
        """Record the interaction's answer as an edit of its original message (the
        deferred "thinking…"): idempotent, so a redo after a crash never shows twice."""
        body = message_body(
            content, embeds=embeds, components=components, ephemeral=False, allowed_mentions=None
        )
        # The original must exist before the relay edits it: defer now (a no-op when
        # already acknowledged), and keep the runtime from writing its done message.
        interaction.responder.delegate_answer()
        await interaction.defer(update=False)
        return await self._enqueue_interaction(
            conn,
            interaction,
            DeliveryKind.EDIT_ORIGINAL,
            body,
            key or f"original:{interaction.id}",
            ephemeral=interaction.responder.ephemeral_default,
            fallback=fallback,
        )

    async def followup(
        self,
        conn: Connection,
        interaction: Interaction,
        content: str | None = None,
        *,
        key: str,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
        ephemeral: bool | None = None,
        fallback: bool = True,
    ) -> OutboxItem:
        """Record a new follow-up message of the interaction. ``key`` names it among the
        interaction's follow-ups (e.g. ``f"receipt:{interaction.id}"``)."""
        is_ephemeral = interaction.responder.ephemeral_default if ephemeral is None else ephemeral
        await interaction.defer()  # a follow-up needs an acknowledged interaction
        body = message_body(
            content,
            embeds=embeds,
            components=components,
            ephemeral=is_ephemeral,
            allowed_mentions=None,
        )
        return await self._enqueue_interaction(
            conn,
            interaction,
            DeliveryKind.FOLLOWUP,
            body,
            key,
            ephemeral=is_ephemeral,
            fallback=fallback,
        )

    async def channel_message(
        self,
        conn: Connection,
        channel_id: str,
        content: str | None = None,
        *,
        key: str,
        embeds: Sequence[Embed] | None = None,
        components: Sequence[Component] | None = None,
    ) -> OutboxItem:
        """Record a message to a channel (bot token, de-duplicated by nonce)."""
        body = message_body(
            content, embeds=embeds, components=components, ephemeral=False, allowed_mentions=None
        )
        item = OutboxItem(
            key=key, kind=DeliveryKind.CHANNEL_MESSAGE, payload=body, channel_id=channel_id
        )
        await self.enqueue(conn, item)
        return item

    async def _enqueue_interaction(
        self,
        conn: Connection,
        interaction: Interaction,
        kind: DeliveryKind,
        body: Mapping[str, Any],
        key: str,
        *,
        ephemeral: bool,
        fallback: bool,
    ) -> OutboxItem:
        """Record ``body`` as ``kind`` for ``interaction`` (its token, expiry, channel and
        fallback target) in the caller's transaction; the item, recorded or a duplicate."""
        payload = interaction.payload
        responder = interaction.responder
        item = OutboxItem(
            key=key,
            kind=kind,
            payload=body,
            interaction_id=interaction.id,
            application_id=payload.application_id,
            token=payload.token,
            expires_at=self.token_expiry(responder.arrived_at),
            channel_id=interaction.channel_id,
            user_id=interaction.user_id,
            ephemeral=ephemeral,
            fallback=fallback,
            fallback_channel_id=responder.fallback_channel_id,
        )
        await self.enqueue(conn, item)
        return item

    def token_expiry(self, arrived_at: float) -> float:
        """Wall-clock time after which the relay must not use a token of an interaction
        that arrived at monotonic ``arrived_at``: 15 minutes minus the margin. Measured
        from arrival on this process's clock (after Discord created it: conservative)."""
        arrived_wall = self.clock.time() - (self.clock.monotonic() - arrived_at)
        return arrived_wall + INTERACTION_TOKEN_LIFETIME - self.settings.expiry_margin

    # --- waking the relay ----------------------------------------------------------------

    def notify(self) -> None:
        """Tell this process's relay that there is work (no-op outside a loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.wakeup.set()

    @property
    def wakeup(self) -> asyncio.Event:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup

    # --- reading ------------------------------------------------------------------------

    async def get(self, key: str) -> OutboxRecord | None:
        row = await self.database.fetchrow("SELECT * FROM outbox_items WHERE key = $1", key)
        return None if row is None else _record(row)

    async def records(self, state: OutboxState | None = None) -> list[OutboxRecord]:
        """Every item (in a state), oldest first: for tests, inspection and tools."""
        if state is None:
            rows = await self.database.fetch("SELECT * FROM outbox_items ORDER BY id")
        else:
            rows = await self.database.fetch(
                "SELECT * FROM outbox_items WHERE state = $1 ORDER BY id", str(state)
            )
        return [_record(row) for row in rows]

    async def backlog(self) -> tuple[int, int, float | None]:
        """(pending, sending, created_at of the oldest pending) in one statement."""
        row = await self.database.fetchrow(
            "SELECT "
            "COALESCE(SUM(CASE WHEN state = $1 THEN 1 ELSE 0 END), 0) AS pending, "
            "COALESCE(SUM(CASE WHEN state = $2 THEN 1 ELSE 0 END), 0) AS sending, "
            "MIN(CASE WHEN state = $1 THEN created_at END) AS oldest "
            "FROM outbox_items WHERE state IN ($1, $2)",
            *_ACTIVE,
        )
        assert row is not None
        return int(row["pending"]), int(row["sending"]), row["oldest"]

    async def next_due(self) -> float | None:
        """When the next pending item (or lapsing lease) is due, wall clock."""
        # One statement (one transaction); each subquery keeps its partial index.
        row = await self.database.fetchrow(
            "SELECT (SELECT MIN(next_attempt_at) FROM outbox_items WHERE state = $1) AS due, "
            "(SELECT MIN(lease_until) FROM outbox_items WHERE state = $2) AS lease",
            *_ACTIVE,
        )
        assert row is not None
        dues = [value for value in (row["due"], row["lease"]) if value is not None]
        return min(dues) if dues else None

    # --- the relay's statements ----------------------------------------------------------

    async def claim(self, relay_id: str, *, limit: int) -> list[ClaimedItem]:
        """Claim up to ``limit`` due items for ``relay_id`` and commit SENDING before any
        HTTP call: due pending items, and SENDING items whose lease lapsed (in doubt).
        PostgreSQL skips rows another relay is claiming (``FOR UPDATE SKIP LOCKED``);
        SQLite's ``BEGIN IMMEDIATE`` lets one claim run at a time."""
        now = self.clock.time()
        lease_until = now + self.settings.lease

        async def body(conn: Connection) -> list[ClaimedItem]:
            lock = " FOR UPDATE SKIP LOCKED" if conn.dialect is Dialect.POSTGRESQL else ""
            rows = await conn.fetch(
                "SELECT * FROM outbox_items WHERE (state = $1 AND next_attempt_at <= $3) "
                "OR (state = $2 AND lease_until <= $3) "
                "ORDER BY next_attempt_at, id LIMIT $4" + lock,
                *_ACTIVE,
                now,
                limit,
            )
            claimed: list[ClaimedItem] = []
            for row in rows:
                previous = OutboxState(row["state"])
                previous.check(OutboxState.SENDING)
                in_doubt = previous is OutboxState.SENDING
                await conn.execute(
                    "UPDATE outbox_items SET state = $1, previous_state = state, "
                    "attempts = attempts + 1, claimed_by = $2, claimed_at = $3, "
                    "lease_until = $4, in_doubt = in_doubt + $5 WHERE id = $6",
                    str(OutboxState.SENDING),
                    relay_id,
                    now,
                    lease_until,
                    1 if in_doubt else 0,
                    row["id"],
                )
                claimed.append(
                    ClaimedItem(
                        id=int(row["id"]),
                        key=row["key"],
                        kind=DeliveryKind(row["kind"]),
                        payload=json.loads(row["payload"]),
                        interaction_id=row["interaction_id"],
                        application_id=row["application_id"],
                        token=row["token"],
                        channel_id=row["channel_id"],
                        user_id=row["user_id"],
                        ephemeral=bool(row["ephemeral"]),
                        fallback=bool(row["fallback"]),
                        fallback_channel_id=row["fallback_channel_id"],
                        created_at=row["created_at"],
                        expires_at=row["expires_at"],
                        attempts=int(row["attempts"]) + 1,
                        claimed_at=now,
                        lease_until=lease_until,
                        in_doubt=in_doubt,
                        previous_route=_route(row["attempt_route"]) if in_doubt else None,
                        previous_claimed_at=row["claimed_at"] if in_doubt else None,
                    )
                )
            return claimed

        return await self.database.run_transaction(body)

    async def mark_route(self, item: ClaimedItem, relay_id: str, route: DeliveryRoute) -> bool:
        """Record (and commit) which way the attempt is about to go, before it goes."""
        return await self._fenced(item, relay_id, "attempt_route = $1", str(route))

    async def finish_delivered(
        self,
        item: ClaimedItem,
        relay_id: str,
        *,
        route: DeliveryRoute,
        message_id: str | None,
        resolution: str | None,
        note: str | None = None,
    ) -> bool:
        """SENDING → DELIVERED, only if this relay still owns the claim (a fence: a
        relay whose lease lapsed cannot overwrite its successor). Erases the token."""
        return await self._fenced(
            item,
            relay_id,
            "state = $1, delivered_at = $2, delivered_via = $3, message_id = $4, "
            "resolution = COALESCE($5, resolution), last_error = COALESCE($6, last_error), "
            "token = NULL, ended_at = $2, lease_until = NULL",
            str(OutboxState.DELIVERED),
            self.clock.time(),
            str(route),
            message_id,
            resolution,
            note,
        )

    async def finish_dead(
        self, item: ClaimedItem, relay_id: str, *, reason: str, resolution: str | None = None
    ) -> bool:
        """SENDING → DEAD with a reason (fenced like :meth:`finish_delivered`)."""
        return await self._fenced(
            item,
            relay_id,
            "state = $1, dead_reason = $2, ended_at = $3, "
            "resolution = COALESCE($4, resolution), token = NULL, lease_until = NULL",
            str(OutboxState.DEAD),
            reason,
            self.clock.time(),
            resolution,
        )

    async def reschedule(
        self,
        item: ClaimedItem,
        relay_id: str,
        *,
        at: float,
        error: str,
        resolution: str | None = None,
    ) -> bool:
        """SENDING → PENDING, due again at wall-clock ``at`` (fenced). The attempt is
        over (it failed, with an answer), so it is no longer in doubt."""
        return await self._fenced(
            item,
            relay_id,
            "state = $1, next_attempt_at = $2, last_error = $3, "
            "resolution = COALESCE($4, resolution), lease_until = NULL, attempt_route = NULL",
            str(OutboxState.PENDING),
            at,
            error,
            resolution,
        )

    async def _fenced(
        self, item: ClaimedItem, relay_id: str, assignments: str, *values: object
    ) -> bool:
        """``UPDATE ... SET assignments`` (placeholders ``$1..$n`` for ``values``), only
        while ``relay_id`` still holds this claim of ``item``: the fence every relay
        statement after :meth:`claim` goes through. True when the row was changed."""
        n = len(values)
        changed = await self.database.execute(
            f"UPDATE outbox_items SET {assignments} WHERE id = ${n + 1} AND state = ${n + 2} "
            f"AND claimed_by = ${n + 3} AND claimed_at = ${n + 4}",
            *values,
            item.id,
            str(OutboxState.SENDING),
            relay_id,
            item.claimed_at,
        )
        return changed == 1

    async def purge(self, *, older_than: float) -> int:
        """Delete delivered and dead items that ended before wall-clock ``older_than``."""
        return await self.database.execute(
            "DELETE FROM outbox_items WHERE ended_at IS NOT NULL AND ended_at < $1",
            older_than,
        )
