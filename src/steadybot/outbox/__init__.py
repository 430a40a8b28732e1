"""Durable outbox: side effects recorded with the state change, delivered by a relay.

Theory — the transactional outbox. A handler that charges credits and then tells the
user "done" does two things that can fail apart: the database commit and the Discord
call. Done in that order, a crash between them charges without telling; in the other
order it tells without charging. So the message is not sent by the handler: it is
written as a row of ``outbox_items`` **in the same transaction** as the charge
(:meth:`Outbox.enqueue` takes the caller's :class:`~steadybot.storage.Connection`).
Both commit or neither does. A relay (:class:`OutboxRelay`) reads committed rows and
delivers them with jittered retries until the interaction token expires; then it posts
to the channel (a DM for ephemeral answers) when allowed, or dead-letters the row with
a reason.

At-least-once plus de-duplication. A relay can always crash between Discord accepting
a message and the relay recording that; the only way never to lose a message is to
send it again after such a crash. What the user sees must then still be one message.
Each item has a unique ``key`` (enqueuing twice is a no-op), and its lifecycle is:

    PENDING ──claim──> SENDING ──> DELIVERED
       ^                  │ └────> DEAD (with a reason)
       └──retry (backoff)─┘

A claim commits SENDING (with a lease and, before the call, the route it takes:
token or channel) **before** the HTTP call, and DELIVERED after Discord's answer. After
a crash an item left in SENDING is **in doubt**: the call may or may not have reached
Discord. When its lease lapses a relay claims it again and resolves it by kind:

- ``edit_original`` — PATCH ``@original`` is idempotent: doing it again leaves the same
  message. A deferred interaction's "thinking…" placeholder is the natural home of its
  answer, so this is the kind to use for "the answer to this command": never seen
  twice, ephemeral or not.
- ``channel_message`` (and every channel/DM fallback) — POST with ``nonce`` and
  ``enforce_nonce``: Discord returns the existing message for a nonce it saw from us
  in the past few minutes. Redone within ``nonce_window`` it is safe; later, it is
  sent again and counted as ``redelivered``.
- ``followup`` — POST to the webhook has no idempotency key. A non-ephemeral follow-up
  is looked for among the channel's recent messages (made by this application for this
  interaction, with this content) before resending: found means delivered. An
  ephemeral one cannot be looked for (it is in no channel): by
  ``ephemeral_in_doubt`` it is sent again (``redelivered``: the user may see it twice)
  or dead-lettered (``in doubt: no way to check``: the user may see it never). This is
  the honest residual window; prefer ``edit_original`` for answers that matter.
- An in-doubt ``edit_original`` whose token died meanwhile is looked for like a
  follow-up (the original lives in the channel) before the fallback posts it.

Statistics count every in-doubt claim (``in_doubt_found``), how it was resolved
(``in_doubt_resolved``) and the unchecked resends (``redelivered``).

The token. Delivering needs the interaction's webhook token, possibly after a restart,
so it is stored in the row. It is a bearer secret for 15 minutes (it lets anyone post
as the application into that interaction): it never appears in a log, an error or a
record's ``repr``, and it is erased (set NULL) as soon as the item is delivered or dead.
Whoever can read the database during those minutes can read it: protect the database
as you protect the bot token.

Why our own: outbox libraries (for Kafka, message brokers, Django) deliver to queues
with idempotent consumers. Discord is the consumer here, and it de-duplicates only by
route (``@original``, ``nonce``), within a token that dies at 15 minutes; the kinds,
the look-up and the expiry-aware fallback are what this package adds.
"""

from steadybot.outbox.errors import IllegalOutboxTransition, OutboxError
from steadybot.outbox.models import (
    DeliveryKind,
    DeliveryRoute,
    OutboxItem,
    OutboxRecord,
    OutboxState,
    OutboxStatistics,
)
from steadybot.outbox.relay import OutboxRelay
from steadybot.outbox.schema import OUTBOX_MIGRATIONS, OUTBOX_SCOPE
from steadybot.outbox.settings import OutboxSettings
from steadybot.outbox.store import Outbox

__all__ = [
    "OUTBOX_MIGRATIONS",
    "OUTBOX_SCOPE",
    "DeliveryKind",
    "DeliveryRoute",
    "IllegalOutboxTransition",
    "Outbox",
    "OutboxError",
    "OutboxItem",
    "OutboxRecord",
    "OutboxRelay",
    "OutboxSettings",
    "OutboxState",
    "OutboxStatistics",
]
