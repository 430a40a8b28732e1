"""The outbox's limits as one frozen record, read from :class:`~steadybot.config.Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from steadybot.config import Settings

__all__ = ["OutboxSettings"]


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """See ``docs/configuration.md`` (``STEADYBOT_OUTBOX_*``) for each limit."""

    batch_size: int = 50
    poll_interval: float = 1.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    expiry_margin: float = 10.0
    lease: float = 30.0
    channel_ttl: float = 3600.0
    nonce_window: float = 120.0
    lookup_limit: int = 50
    ephemeral_in_doubt: Literal["redeliver", "dead_letter"] = "redeliver"
    retention: float = 7 * 86_400.0
    pending_age_warning: float = 60.0
    fallback_to_channel: bool = True
    fallback_dm_for_ephemeral: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1: {self.batch_size}")
        for name in ("poll_interval", "backoff_base", "backoff_cap", "lease", "channel_ttl"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive: {getattr(self, name)}")
        if not 1 <= self.lookup_limit <= 100:
            raise ValueError(f"lookup_limit must be 1-100: {self.lookup_limit}")
        if self.ephemeral_in_doubt not in ("redeliver", "dead_letter"):
            raise ValueError(f"ephemeral_in_doubt: {self.ephemeral_in_doubt!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxSettings:
        return cls(
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval,
            backoff_base=settings.outbox_backoff_base,
            backoff_cap=settings.outbox_backoff_cap,
            expiry_margin=settings.outbox_expiry_margin,
            lease=settings.outbox_lease,
            channel_ttl=settings.outbox_channel_ttl,
            nonce_window=settings.outbox_nonce_window,
            lookup_limit=settings.outbox_lookup_limit,
            ephemeral_in_doubt=settings.outbox_ephemeral_in_doubt,
            retention=settings.outbox_retention,
            pending_age_warning=settings.outbox_pending_age_warning,
            fallback_to_channel=settings.fallback_to_channel,
            fallback_dm_for_ephemeral=settings.fallback_dm_for_ephemeral,
        )
