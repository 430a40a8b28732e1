"""The outbox's table, as migrations of scope ``outbox``.

``outbox_items`` holds one row per side effect. ``key`` is unique (enqueuing twice is a
no-op). ``token`` holds the interaction's webhook token while the item may still need
it and is set to NULL when the item ends (delivered or dead). ``lease_until`` is the
wall-clock time until which the relay that claimed a SENDING item owns it; a SENDING
item past its lease is in doubt and may be claimed again. ``attempt_route`` records
which way the claimed attempt goes (token or channel), so an in-doubt claim knows what
may already have happened.
"""

from __future__ import annotations

from typing import Final

from steadybot.storage import Migration

__all__ = ["OUTBOX_MIGRATIONS", "OUTBOX_SCOPE"]

OUTBOX_SCOPE: Final = "outbox"

_TABLE: Final = """
CREATE TABLE outbox_items (
    id {serial},
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('edit_original', 'followup', 'channel_message')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    payload TEXT NOT NULL,
    interaction_id TEXT,
    application_id TEXT,
    token TEXT,
    channel_id TEXT,
    user_id TEXT,
    ephemeral BOOLEAN NOT NULL,
    fallback BOOLEAN NOT NULL,
    fallback_channel_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_at DOUBLE PRECISION,
    lease_until DOUBLE PRECISION,
    attempt_route TEXT,
    previous_state TEXT,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    resolution TEXT,
    last_error TEXT,
    delivered_at DOUBLE PRECISION,
    delivered_via TEXT,
    message_id TEXT,
    dead_reason TEXT,
    ended_at DOUBLE PRECISION
);
CREATE INDEX outbox_items_due ON outbox_items (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_items_sending ON outbox_items (lease_until) WHERE state = 'sending';
CREATE INDEX outbox_items_ended ON outbox_items (ended_at) WHERE ended_at IS NOT NULL;
"""

OUTBOX_MIGRATIONS: Final = (
    Migration(
        1,
        "outbox items",
        {
            "sqlite": _TABLE.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"),
            "postgresql": _TABLE.format(serial="BIGSERIAL PRIMARY KEY"),
        },
        scope=OUTBOX_SCOPE,
    ),
)
"""Pass to ``open_database(..., migrations=...)`` (with the app's own), or call
:meth:`Outbox.migrate`."""
