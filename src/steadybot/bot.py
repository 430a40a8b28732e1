"""The Bot: the user's entry point: handlers, configuration, wiring and lifecycle.

A Bot is what a user builds and decorates. The HTTP front door (:meth:`Bot.asgi`)
runs each interaction with :meth:`Bot.handle` in the request's own task; other
feeds (tests, later the gateway adapter) use :meth:`Bot.dispatch`, which starts a
task. Either way the task is tracked, so shutdown can let in-flight work finish within
``shutdown_grace`` and nothing runs unowned.

The Bot is a facade over parts with one job each, so this module reads as its public
API: the handler registry (:mod:`steadybot.interactions.registry`), the tracked tasks
and the shutdown grace (:mod:`steadybot._bot.work`), and the optional parts made on
first use on the bot's clock — select resets, coordination, caches and members, the
outbox, breakers (:mod:`steadybot._bot.parts`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal

from steadybot._bot.dispatch import Dispatcher
from steadybot._bot.parts import BotParts
from steadybot._bot.work import TrackedWork
from steadybot.cache import BoundedCache
from steadybot.cache_registry import CacheRegistry, TtlSetting
from steadybot.clock import Clock, SystemClock
from steadybot.components.reset import SelectResetManager
from steadybot.config import Settings
from steadybot.coordination.contracts import Flights, Locks
from steadybot.coordination.keyed import Priority
from steadybot.errors import ClockInUse
from steadybot.interactions.defer import LatencyStatistics
from steadybot.interactions.guards import GuardOptions, HandlerGuards, KeySource
from steadybot.interactions.handlers import Handler, HandlerSpec
from steadybot.interactions.payload import (
    AnyInteraction,
    PingInteraction,
)
from steadybot.interactions.registry import DeferSetting, HandlerRegistry
from steadybot.interactions.sinks import InitialResponseSink
from steadybot.interactions.statistics import RuntimeCounters, RuntimeStatistics
from steadybot.members import MemberCache
from steadybot.observability.health import HealthMonitor
from steadybot.observability.metrics import BotMetrics
from steadybot.observability.watchdog import LoopWatchdog, handler_codes
from steadybot.outbox import Outbox, OutboxRelay, OutboxSettings
from steadybot.resilience.breaker import CircuitBreaker
from steadybot.rest import RestClient, Transport

if TYPE_CHECKING:
    from steadybot.http.app import InteractionsApp
    from steadybot.storage import Database

__all__ = ["Bot", "DeferSetting", "LifecycleHook"]

log = logging.getLogger("steadybot.bot")

LifecycleHook = Callable[[], Awaitable[object]]


class Bot:
    """A Discord application's interaction handlers and the runtime around them."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._transport = transport
        self.rest = RestClient.from_settings(self.settings, clock=self.clock, transport=transport)
        self._registry = HandlerRegistry(self.settings, lambda: self.guards)
        self._counters = RuntimeCounters()
        self._work = TrackedWork()
        self._accepting = True
        self._app: InteractionsApp | None = None
        self._metrics: BotMetrics | None = None
        self._health: HealthMonitor | None = None
        self._watchdog: LoopWatchdog | None = None
        self._on_start: list[LifecycleHook] = []
        self._on_close: list[LifecycleHook] = []
        self._started = False
        self._parts = BotParts(self, started=lambda: self._started)
        self._dispatcher = Dispatcher(self, self._registry, self._counters, lambda: self.resets)

    def use_clock(self, clock: Clock) -> None:
        """Run on ``clock`` from now on (tests: share a ManualClock with the emulator).
        The REST client is rebuilt on the new clock.

        Call it right after building the bot, before anything is made on its clock:
        once the bot has started or made its ASGI app, health monitor, resets,
        coordination (``guards``, ``locks``, ``flights``, ``background``, a guarded
        handler's first run), caches, members, outbox or a breaker, or once the REST
        client has sent a request, this raises :class:`~steadybot.errors.ClockInUse`
        naming them: those parts keep the clock they were made on (and a rebuilt one
        would leave users holding the old part, its Redis connection unclosed).
        Registering handlers is fine. Better still, pass ``clock=`` to :class:`Bot`."""
        in_use = self._made_on_clock()
        if in_use:
            raise ClockInUse(
                f"use_clock() after the bot made {', '.join(in_use)} on its clock: they "
                "would keep the old one; call use_clock() first, or pass Bot(clock=...)"
            )
        self.clock = clock
        self.rest = RestClient.from_settings(self.settings, clock=clock, transport=self._transport)

    def _made_on_clock(self) -> list[str]:
        """What holds the current clock (or REST client) already."""
        made = ["the started bot"] if self._started else []
        if self._app is not None:
            made.append("asgi()")
        if self._health is not None:
            made.append("health")
        made += self._parts.made()
        if self.rest.statistics().requests:
            made.append("REST requests")
        return made

    # --- registration -------------------------------------------------------------------

    def command(
        self,
        path: str,
        *,
        defer: DeferSetting = "auto",
        ephemeral: bool = False,
        exclusive: KeySource | None = None,
        serialize: KeySource | None = None,
        priority: Priority = Priority.INTERACTIVE,
        busy: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a slash command handler; ``path`` may name a sub-command:
        ``"queue join"``. Options arrive as keyword arguments by name.

        ``exclusive``/``serialize``/``priority``/``busy``: see :meth:`component`."""
        options = GuardOptions(exclusive, serialize, priority, busy)
        return self._registry.command(path, defer, ephemeral, options)

    def component(
        self,
        pattern: str,
        *,
        defer: DeferSetting = "auto",
        ephemeral: bool = False,
        reset: bool | Literal["edit"] = False,
        exclusive: KeySource | None = None,
        serialize: KeySource | None = None,
        priority: Priority = Priority.INTERACTIVE,
        busy: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a button/select handler by custom_id pattern, e.g.
        ``"role:{role_id:int}"``; placeholders arrive as keyword arguments.

        ``reset=True`` (selects): the menu shows no pick again after every pick: in the
        answer (type 7) when the handler answers with ``update`` or ``respond`` (its
        content then goes as a follow-up), otherwise by a debounced, fresh, locked edit
        (:mod:`steadybot.components.reset`). ``reset="edit"`` always uses the edit, for
        handlers whose answer must be the interaction's initial message.

        ``exclusive="user"`` (``"guild"``, ``"channel"``, ``"message"`` or a function of
        the interaction returning a key): a second interaction for a key this handler
        is still running for gets ``busy`` (ephemeral; default ``busy_message``) and the
        handler does not run — across processes with Redis. ``serialize="user"`` (same
        kinds): one run at a time per key, in arrival order, ``priority`` deciding
        among the waiters (interactive before :meth:`background` work). See
        :mod:`steadybot.interactions.guards` and docs/coordination.md."""
        options = GuardOptions(exclusive, serialize, priority, busy)
        return self._registry.pattern(
            "component", pattern, defer, ephemeral, reset=reset, guard=options
        )

    def modal(
        self,
        pattern: str,
        *,
        defer: DeferSetting = "auto",
        ephemeral: bool = False,
        exclusive: KeySource | None = None,
        serialize: KeySource | None = None,
        priority: Priority = Priority.INTERACTIVE,
        busy: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a modal-submit handler by custom_id pattern (``exclusive`` & co.: see
        :meth:`component`)."""
        options = GuardOptions(exclusive, serialize, priority, busy)
        return self._registry.pattern("modal", pattern, defer, ephemeral, guard=options)

    def autocomplete(self, path: str, *, option: str | None = None) -> Callable[[Handler], Handler]:
        """Register an autocomplete handler for a command (and one option of it)."""
        return self._registry.autocomplete(path, option)

    def on_start(self, hook: LifecycleHook) -> LifecycleHook:
        """Run ``hook`` when the bot starts, before it takes interactions (in the order
        registered): apply migrations, preload static data, warm caches. A hook that
        raises fails the start (the server does not come up) instead of serving half
        ready."""
        self._on_start.append(hook)
        return hook

    def on_close(self, hook: LifecycleHook) -> LifecycleHook:
        """Run ``hook`` on shutdown, after in-flight handlers finished or were cancelled
        and before the REST client closes (in reverse order of registration): flush
        write-behind buffers, close pools. A hook that raises is logged; the rest run."""
        self._on_close.append(hook)
        return hook

    # --- dispatch -------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once shutdown began: new interactions are refused."""
        return self._accepting

    def dispatch(
        self, payload: AnyInteraction, *, arrived_at: float, sink: InitialResponseSink
    ) -> asyncio.Task[None]:
        """Start handling ``payload`` as a tracked task; the sink gets the initial response."""
        if isinstance(payload, PingInteraction):
            raise ValueError("PING is answered by the front door")
        return self._work.run(self.handle(payload, arrived_at=arrived_at, sink=sink))

    async def handle(
        self, payload: AnyInteraction, *, arrived_at: float, sink: InitialResponseSink
    ) -> None:
        """Handle ``payload`` in the current task (the HTTP front door's request task, or
        :meth:`dispatch`'s), tracked for shutdown until the handler is done."""
        if isinstance(payload, PingInteraction):
            raise ValueError("PING is answered by the front door")
        task = asyncio.current_task()
        self._work.add(task)
        try:
            await self._dispatcher.handle(payload, arrived_at=arrived_at, sink=sink)
        finally:
            self._work.discard(task)

    @property
    def resets(self) -> SelectResetManager:
        """The select-menu reset manager (made on first use)."""
        return self._parts.resets

    # --- introspection ----------------------------------------------------------------------

    def statistics(self) -> RuntimeStatistics:
        """Counters of everything the runtime did since start."""
        return self._counters.snapshot()

    def handler_specs(self) -> list[HandlerSpec]:
        """Every registered handler (metrics read their counts)."""
        return list(self._registry.handlers())

    @property
    def health(self) -> HealthMonitor:
        """The health verdict (``GET /health``); components register checks into it."""
        if self._health is None:
            self._health = HealthMonitor(self, clock=self.clock)
        return self._health

    def breaker(self, name: str, **limits: Any) -> CircuitBreaker:
        """A circuit breaker for one of the bot's own dependencies (database, an API),
        on the bot's clock, made once per name; ``limits`` as :class:`CircuitBreaker`
        takes them. An open breaker makes the health verdict a warning (a feature is
        degraded) and every breaker is in the metrics."""
        return self._parts.breaker(name, limits)

    # --- outbox (outbox/) -------------------------------------------------------------------

    def use_outbox(self, database: Database, *, settings: OutboxSettings | None = None) -> Outbox:
        """Deliver follow-ups recorded in transactions on ``database``: makes
        :attr:`outbox` and its relay (started and closed with the bot, in the metrics
        and the health verdict). Apply ``OUTBOX_MIGRATIONS`` first (``open_database``
        or ``await bot.outbox.migrate()`` in an ``on_start`` hook)."""
        return self._parts.use_outbox(database, settings)

    @property
    def outbox(self) -> Outbox:
        """The outbox (:meth:`use_outbox` makes it): ``await bot.outbox.edit_original(
        conn, interaction, ...)`` inside the transaction that changes the state."""
        return self._parts.outbox

    @property
    def outbox_relay(self) -> OutboxRelay | None:
        return self._parts.outbox_relay

    @property
    def reset_manager(self) -> SelectResetManager | None:
        """The select-reset manager if one was made (``resets`` makes it)."""
        return self._parts.reset_manager

    @property
    def metrics(self) -> BotMetrics:
        """This bot's metrics registry (``GET /metrics``); components register into it."""
        if self._metrics is None:
            self._metrics = BotMetrics(self)
        return self._metrics

    def latency(self) -> Mapping[str, LatencyStatistics]:
        """Per-handler answer-latency snapshots."""
        return {
            spec.name: spec.tracker.statistics(self.settings.defer_after)
            for spec in self._registry.handlers()
        }

    @property
    def in_flight(self) -> int:
        """Handler runs and spawned work not finished yet."""
        return len(self._work)

    @property
    def idle(self) -> bool:
        """Nothing running: no handler, no spawned work, no pending menu reset."""
        resets = self._parts.reset_manager
        return not self._work and (resets is None or not resets.pending)

    def spawn(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """Run ``work`` after the answer, tracked: kept alive until it ends (a bare
        ``create_task`` can be garbage-collected mid-way), waited for on shutdown like a
        handler, and counted by :attr:`in_flight`."""
        return self._work.spawn(work)

    # --- coordination: locks, single flight, guarded handlers, background work -----------

    @property
    def guards(self) -> HandlerGuards:
        """The coordination behind ``exclusive=``/``serialize=``, :attr:`locks`,
        :attr:`flights` and :meth:`background` (made on first use: Redis when
        ``redis_url`` is set, else in-process). Its statistics are in the metrics."""
        return self._parts.guards

    @property
    def locks(self) -> Locks:
        """Keyed locks for the bot's own critical sections, across processes with Redis:
        ``async with bot.locks(f"order:{id}", timeout=5) as lease:`` (``lease.fence``
        for the store, docs/coordination.md)."""
        return self.guards.locks

    @property
    def flights(self) -> Flights:
        """Single flight: ``await bot.flights.join(key, work, result_type=T)`` shares one
        run's result; ``reject`` raises ``AlreadyRunning`` while one runs."""
        return self.guards.flights

    def background(
        self, key: str, work: Callable[[], Awaitable[object]], *, delay: float = 0.0
    ) -> asyncio.Task[object]:
        """Queue ``work`` for ``key`` (e.g. ``"user:123"``, the key ``serialize="user"``
        uses) at background priority: it runs after the interactive work waiting for the
        same key, after ``delay`` seconds; tracked like :meth:`spawn`."""
        return self.spawn(self.guards.background(key, work, delay=delay))

    # --- caches and the member cache (cache_registry.py, members.py) ------------------

    @property
    def caches(self) -> CacheRegistry:
        """The bot's named caches (made on first use; started and closed with the bot)."""
        return self._parts.caches

    def cache(
        self, name: str, *, max_size: int | None = None, ttl: TtlSetting = None
    ) -> BoundedCache[Any]:
        """The bounded cache called ``name``, made once per name on the bot's clock
        (``max_size`` and ``ttl`` default to ``STEADYBOT_CACHE_*``; ``ttl="never"``: no
        expiry). Annotate what it holds where you keep it:
        ``board: BoundedCache[list[Request]] = bot.cache("board", ttl=30)``."""
        return self._parts.cache(name, max_size, ttl)

    @property
    def members(self) -> MemberCache:
        """The member cache (:mod:`steadybot.members`): ``get``, ``pinned``, ``warm``,
        role writes that keep it right."""
        return self._parts.members

    def warm_members(self, guild_id: str | None = None) -> None:
        """Warm the member cache when the bot starts, before it takes interactions:
        ``guild_id``'s members, or those of every guild the bot is in. A failed warm-up
        fails the start (a board that would fetch every member is not ready)."""
        self._parts.warm_members(guild_id)

    # --- lifecycle ------------------------------------------------------------------------

    def asgi(self) -> InteractionsApp:
        """The ASGI application serving ``/interactions`` for this bot."""
        if self._app is None:
            from steadybot.http.app import InteractionsApp

            self._app = InteractionsApp(self)
        return self._app

    async def start(self) -> None:
        """Prepare for work (idempotent): the health monitor starts sampling, when
        enabled the event-loop watchdog starts watching, and the :meth:`on_start` hooks
        run once."""
        self._accepting = True
        settings = self.settings
        if settings.watchdog_enabled and self._watchdog is None:
            self._watchdog = LoopWatchdog(
                interval=settings.watchdog_interval,
                threshold=settings.watchdog_threshold,
                handlers=lambda: handler_codes(self._registry.handlers()),
            )
            self._watchdog.start()
            watchdog = self._watchdog
            self.health.lag = lambda: max(watchdog.lags[-10:], default=0.0)
            self.metrics.register(watchdog.collect)
        self.health.start()
        if not self._started:
            self._started = True
            for hook in self._on_start:
                await hook()

    async def close(self) -> None:
        """Stop taking work, give in-flight handlers ``shutdown_grace`` s, then close."""
        self._accepting = False
        await self._work.drain(self.settings.shutdown_grace, self.clock)
        if self._health is not None:
            self._health.stop()
        if self._watchdog is not None:
            self._watchdog.stop()  # after the grace: a handler blocking shutdown is named
        await self._parts.close()
        if self._started:
            self._started = False
            for hook in reversed(self._on_close):
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))
        await self.rest.close()
