"""Settings from the environment and ``.env``.

Every timeout and limit of the runtime is a named setting with a safe default. Names
are ``STEADYBOT_`` + the field name in capitals, e.g. ``STEADYBOT_DEFER_AFTER=1.5``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from steadybot.constants import API_BASE

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of a :class:`steadybot.Bot`."""

    model_config = SettingsConfigDict(
        env_prefix="STEADYBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- identity -------------------------------------------------------------------
    application_id: str = Field("", description="The application's id (snowflake).")
    public_key: str = Field("", description="The application's Ed25519 public key, hex.")
    token: SecretStr = Field(SecretStr(""), description="The bot token; never logged.")
    api_base: str = Field(API_BASE, description="Discord REST base, or the emulator's.")
    database_url: str = Field(
        "sqlite:///steadybot.sqlite3",
        description="Storage URL: sqlite:///path/file.db or postgresql://user@host:port/db.",
    )
    redis_url: str = Field("", description="Redis URL (used by shared coordination).")

    # --- answering in time ----------------------------------------------------------
    defer_after: float = Field(
        2.0, gt=0, lt=3.0, description="Seconds after arrival at which `auto` defers."
    )
    adaptive_percentile: float = Field(
        0.95, gt=0, le=1, description="Latency percentile that predicts a slow handler."
    )
    latency_window: int = Field(50, ge=1, description="Recent answers kept per handler.")
    latency_min_samples: int = Field(
        5, ge=1, description="Samples needed before latency may trigger an early defer."
    )
    component_defer: Literal["update", "message"] = Field(
        "update",
        description="How components are deferred: type 6 (update) or type 5 (message).",
    )
    progress_interval: float = Field(
        1.0, gt=0, description="Minimum seconds between two progress edits."
    )
    token_expiry_margin: float = Field(
        5.0, ge=0, description="Seconds before the 15-minute expiry to stop using a token."
    )

    # --- after the token --------------------------------------------------------------
    fallback_to_channel: bool = Field(
        True, description="Deliver answers as channel messages once the token is dead."
    )
    fallback_dm_for_ephemeral: bool = Field(
        True, description="Deliver dead-token ephemeral answers by DM, never in public."
    )

    # --- HTTP front door --------------------------------------------------------------
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest interaction body accepted."
    )
    timestamp_max_age: float = Field(
        15.0, gt=0, description="Oldest accepted signature timestamp, in seconds."
    )
    timestamp_max_skew_ahead: float = Field(
        5.0, ge=0, description="How far in the future a timestamp may be, in seconds."
    )
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="Allocations between young-generation GC passes when served "
        "(Python's default is 700; fewer passes, fewer latency spikes); 0 keeps Python's.",
    )
    shutdown_grace: float = Field(
        10.0, ge=0, description="Seconds in-flight handlers get to finish on shutdown."
    )

    # --- REST -----------------------------------------------------------------------
    rest_timeout: float = Field(10.0, gt=0, description="Seconds per REST attempt.")
    rest_max_attempts: int = Field(5, ge=1, description="Attempts per REST call.")
    rest_backoff_base: float = Field(0.25, gt=0, description="First backoff ceiling, s.")
    rest_backoff_cap: float = Field(8.0, gt=0, description="Largest backoff ceiling, s.")
    rest_global_per_second: int = Field(
        50, ge=1, description="Proactive global limit: requests per second per bot token."
    )
    rest_rate_limit_margin: float = Field(
        0.05,
        ge=0,
        description="Seconds added to every rate-limit window; covers network delay jitter.",
    )
    invalid_request_limit: int = Field(
        10_000, ge=1, description="401/403/429 answers per window before Discord bans the IP."
    )
    invalid_request_window: float = Field(
        600.0, gt=0, description="Seconds of the invalid-request window."
    )
    invalid_request_warn_share: float = Field(
        0.5, gt=0, le=1, description="Share of the invalid-request limit that logs a warning."
    )
    redis_prefix: str = Field(
        "steadybot", description="Prefix of every Redis key steadybot writes."
    )

    # --- select-menu resets (components/reset.py) -------------------------------------
    reset_debounce: float = Field(
        0.25, ge=0, description="Seconds picks on one menu wait to share one reset edit."
    )
    reset_max_attempts: int = Field(4, ge=1, description="Attempts per reset edit.")
    reset_backoff_base: float = Field(0.5, gt=0, description="First reset retry ceiling, s.")
    reset_backoff_cap: float = Field(4.0, gt=0, description="Largest reset retry ceiling, s.")
    reset_stale_after: float = Field(
        60.0, gt=0, description="Seconds after which a stuck reset job is ended by the sweep."
    )
    reset_sweep_interval: float = Field(
        10.0, gt=0, description="Seconds between sweeps for stuck reset jobs."
    )
    reset_flush_timeout: float = Field(
        5.0, ge=0, description="Seconds shutdown waits for pending menu resets."
    )
    reset_healthy_success_rate: float = Field(
        0.8, ge=0, le=1, description="Reset success rate below which the verdict is critical."
    )
    reset_max_active_locks: int = Field(
        5, ge=1, description="Active reset locks above which the verdict is a warning."
    )
    reset_answer_wait: float = Field(
        1.5,
        ge=0,
        description="Seconds a pick's answer waits for its menu's lock before answering plainly.",
    )
    reset_answer_settle: float = Field(
        0.25,
        ge=0,
        description="Seconds the bot's own menu edit waits after a pick's type-7 answer.",
    )
    message_cache_ttl: float = Field(
        30.0, gt=0, description="Seconds a message read through the reset manager is cached."
    )
    message_cache_size: int = Field(1000, ge=1, description="Messages kept in that cache.")

    # --- bounded caches (cache/) ---------------------------------------------------------
    cache_max_size: int = Field(
        10_000, ge=1, description="Entries a cache keeps (pinned entries come on top)."
    )
    cache_ttl: float = Field(
        300.0, gt=0, description="Seconds an entry lives; the bound on cross-process staleness."
    )
    cache_sweep_interval: float = Field(
        60.0, gt=0, description="Seconds between sweeps that drop expired entries."
    )
    cache_bus_max_pending: int = Field(
        10_000, ge=1, description="Invalidations queued for Redis before the oldest is dropped."
    )
    cache_bus_backoff_base: float = Field(
        0.5, gt=0, description="First reconnect/publish retry ceiling of the Redis bus, s."
    )
    cache_bus_backoff_cap: float = Field(
        30.0, gt=0, description="Largest reconnect/publish retry ceiling of the Redis bus, s."
    )
    cache_bus_close_timeout: float = Field(
        2.0, ge=0, description="Seconds close() waits for queued invalidations to be sent."
    )
    cache_bus_clear_on_reconnect: bool = Field(
        True, description="Drop every cached entry when the bus's subscription comes back."
    )
    # --- end of bounded caches -----------------------------------------------------------

    # --- the member cache (members.py; bot caches: STEADYBOT_CACHE_*, cache/) ---------
    member_cache_size: int = Field(
        100_000, ge=1, description="Members `bot.members` holds (across guilds)."
    )
    member_cache_ttl: float = Field(
        900.0, gt=0, description="Seconds a cached member lives before it is fetched again."
    )
    member_warm_page_size: int = Field(
        1000, ge=1, le=1000, description="Members per page when warming (Discord's max: 1000)."
    )
    member_refresh_interval: float = Field(
        600.0,
        ge=0,
        description="Seconds between background re-warms of warmed guilds; 0: never.",
    )
    # --- end of the member cache -----------------------------------------------------

    # --- event-loop watchdog (observability/watchdog.py) ------------------------------
    watchdog_enabled: bool = Field(
        True, description="Measure event-loop lag and name the handler that blocks the loop."
    )
    watchdog_interval: float = Field(
        0.1, gt=0, description="Seconds between event-loop lag measurements."
    )
    watchdog_threshold: float = Field(
        0.25, gt=0, description="Seconds of a blocked loop before the watchdog names the culprit."
    )

    # --- health (observability/health.py) ---------------------------------------------
    health_window: float = Field(
        60.0, gt=0, description="Seconds of the sliding window the health verdict judges."
    )
    health_sample_interval: float = Field(
        5.0, gt=0, description="Seconds between samples of the counters for the verdict."
    )
    health_log_interval: float = Field(
        60.0, gt=0, description="Seconds between log lines with the verdict."
    )
    health_min_events: int = Field(
        5, ge=1, description="Events in the window before a success rate is judged."
    )
    health_success_warning: float = Field(
        0.95, ge=0, le=1, description="Initial-response or follow-up success below: warning."
    )
    health_success_critical: float = Field(
        0.8, ge=0, le=1, description="Initial-response or follow-up success below: critical."
    )
    health_loop_lag_warning: float = Field(
        0.25, gt=0, description="Event-loop lag (s) from which the verdict is a warning."
    )
    health_loop_lag_critical: float = Field(
        1.0, gt=0, description="Event-loop lag (s) from which the verdict is critical."
    )
    health_invalid_share_warning: float = Field(
        0.5, ge=0, le=1, description="Invalid-request budget share from which: warning."
    )
    health_invalid_share_critical: float = Field(
        0.8, ge=0, le=1, description="Invalid-request budget share from which: critical."
    )

    # --- coordination: locks, serial queues, single flight (coordination/) ------------
    lock_ttl: float = Field(
        30.0,
        gt=0,
        description="Seconds a Redis lock lives without renewal; a crashed holder frees "
        "its keys after this.",
    )
    lock_renew_interval: float = Field(
        0.0,
        ge=0,
        description="Seconds between renewals of a held Redis lock; 0: a third of lock_ttl.",
    )
    lock_wait_poll: float = Field(
        0.05, gt=0, description="Largest (jittered) pause between two tries for a held Redis lock."
    )
    flight_join_timeout: float = Field(
        30.0, gt=0, description="Seconds a single-flight joiner waits for the run's result."
    )
    flight_result_ttl: float = Field(
        60.0, gt=0, description="Seconds a single-flight result stays readable in Redis."
    )
    serialize_wait: float = Field(
        60.0,
        gt=0,
        description="Seconds a serialize= handler waits for its key's turn before the user "
        "is told to try again.",
    )
    background_wait: float = Field(
        600.0, gt=0, description="Seconds bot.background work waits for its key's turn."
    )
    busy_message: str = Field(
        "⏳ Already working on that.",
        description="Ephemeral answer to an exclusive= handler's key that is already running.",
    )
    serialize_timeout_message: str = Field(
        "⏳ Still busy with your earlier requests; please try again in a moment.",
        description="Ephemeral answer when a serialize= handler's turn did not come in time.",
    )
    coordination_redis_connections: int = Field(
        50,
        ge=1,
        description="Redis connections each Redis client (locks, rate-limit slots) opens at most.",
    )
    coordination_redis_wait: float = Field(
        10.0,
        gt=0,
        description="Seconds a lock or flight call waits for a free Redis connection.",
    )
    # --- end coordination -------------------------------------------------------------

    # --- storage (storage/) -------------------------------------------------------------
    database_pool_size: int = Field(
        10, ge=1, description="Most PostgreSQL connections one process opens."
    )
    database_acquire_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for a pooled PostgreSQL connection."
    )
    database_command_timeout: float = Field(
        30.0, gt=0, description="Seconds one PostgreSQL statement may run."
    )
    database_busy_timeout: float = Field(
        5.0, ge=0, description="Seconds SQLite waits for another process's write lock."
    )
    database_transaction_retries: int = Field(
        5, ge=0, description="Re-runs of a transaction that lost a race (deadlock, busy)."
    )
    database_retry_backoff_base: float = Field(
        0.02, gt=0, description="First backoff ceiling between transaction re-runs, s."
    )
    database_retry_backoff_cap: float = Field(
        1.0, gt=0, description="Largest backoff ceiling between transaction re-runs, s."
    )
    database_sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        "FULL", description="SQLite's synchronous pragma: FULL survives power loss."
    )
    writer_max_rows: int = Field(
        500, ge=1, description="Rows a batched writer writes in one batch (flush on size)."
    )
    writer_max_delay: float = Field(
        1.0, gt=0, description="Seconds a buffered row waits at most before its batch is written."
    )
    writer_max_buffer: int = Field(
        50_000, ge=1, description="Rows a batched writer holds; when full the oldest are dropped."
    )
    writer_retry_cap: float = Field(
        30.0, gt=0, description="Largest backoff between retries of a failed batch, s."
    )
    credits_sweep_interval: float = Field(
        5.0, gt=0, description="Seconds between sweeps that expire overdue credit reservations."
    )
    credits_expire_batch: int = Field(
        500, ge=1, description="Reservations one expiry transaction handles at most."
    )
    credits_overdue_grace: float = Field(
        60.0, ge=0, description="Seconds past its deadline before reconcile flags a reservation."
    )
    # --- end storage ------------------------------------------------------------------

    # --- outbox (outbox/) ---------------------------------------------------------------
    outbox_batch_size: int = Field(50, ge=1, description="Items a relay claims in one transaction.")
    outbox_poll_interval: float = Field(
        1.0, gt=0, description="Seconds between relay polls when nothing wakes it."
    )
    outbox_backoff_base: float = Field(
        0.5, gt=0, description="First retry backoff ceiling of a failed delivery, s."
    )
    outbox_backoff_cap: float = Field(
        30.0, gt=0, description="Largest retry backoff ceiling of a failed delivery, s."
    )
    outbox_expiry_margin: float = Field(
        10.0, ge=0, description="Seconds before the token's expiry the relay stops using it."
    )
    outbox_lease: float = Field(
        30.0, gt=0, description="Seconds a relay owns a claimed item; then it is in doubt."
    )
    outbox_channel_ttl: float = Field(
        3600.0, gt=0, description="Seconds a channel message (or fallback) is retried at most."
    )
    outbox_nonce_window: float = Field(
        120.0, ge=0, description="Seconds Discord's enforce_nonce is trusted to deduplicate."
    )
    outbox_lookup_limit: int = Field(
        50, ge=1, le=100, description="Recent channel messages searched for an in-doubt item."
    )
    outbox_ephemeral_in_doubt: Literal["redeliver", "dead_letter"] = Field(
        "redeliver",
        description="An in-doubt ephemeral follow-up: send again (may show twice) or give up.",
    )
    outbox_retention: float = Field(
        7 * 86_400.0, ge=0, description="Seconds delivered and dead items are kept; 0 forever."
    )
    outbox_pending_age_warning: float = Field(
        60.0, gt=0, description="Oldest pending item age (s) from which health warns."
    )
    # --- end outbox -------------------------------------------------------------------

    # --- user-facing texts ----------------------------------------------------------
    unknown_route_message: str = Field(
        "This action is no longer available.",
        description="Ephemeral answer to an interaction no handler matches.",
    )
    error_message: str = Field(
        "Something went wrong on our side. Please try again.",
        description="Ephemeral answer when a handler raises an unexpected error.",
    )
    interrupted_message: str = Field(
        "The bot is restarting; please try again in a moment.",
        description="Ephemeral answer when shutdown cuts a handler off.",
    )
    done_message: str = Field(
        "✅ Done.", description="Written when a deferred handler returns without answering."
    )
