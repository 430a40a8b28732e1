"""The Bot: handler registry, configuration, wiring and lifecycle.

A Bot is what a user builds and decorates. The HTTP front door (:meth:`Bot.asgi`)
runs each interaction with :meth:`Bot.handle` in the request's own task; other
feeds (tests, later the gateway adapter) use :meth:`Bot.dispatch`, which starts a
task. Either way the task is tracked, so shutdown can let in-flight work finish within
``shutdown_grace`` and nothing runs unowned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.cache import BoundedCache
from steadybot.cache_registry import CacheRegistry, TtlSetting
from steadybot.clock import Clock, SystemClock
from steadybot.components.reset import ResetSettings, SelectResetManager
from steadybot.config import Settings
from steadybot.constants import EPHEMERAL_FLAG
from steadybot.coordination.backends import coordination_from_settings
from steadybot.coordination.contracts import Flights, Locks
from steadybot.coordination.keyed import Priority
from steadybot.interactions.context import Interaction
from steadybot.interactions.defer import DeferMode, LatencyStatistics, LatencyTracker
from steadybot.interactions.guards import GuardOptions, HandlerGuards, KeySource
from steadybot.interactions.handlers import Handler, HandlerSpec
from steadybot.interactions.payload import (
    AnyInteraction,
    AutocompleteInteraction,
    CommandInteraction,
    ComponentInteraction,
    ModalSubmitInteraction,
    PingInteraction,
)
from steadybot.interactions.responder import Responder, ResponderState
from steadybot.interactions.routing import CustomIdPattern, RouteMatch, Router
from steadybot.interactions.runner import run_handler
from steadybot.interactions.sinks import InitialResponseSink
from steadybot.interactions.statistics import RuntimeCounters, RuntimeStatistics
from steadybot.members import MEMBER_CACHE_NAME, MemberCache
from steadybot.observability.health import HealthMonitor, Status
from steadybot.observability.metrics import BotMetrics
from steadybot.observability.watchdog import LoopWatchdog, handler_codes
from steadybot.outbox import Outbox, OutboxRelay, OutboxSettings
from steadybot.resilience.breaker import BreakerState, CircuitBreaker
from steadybot.rest import RestClient, Transport

if TYPE_CHECKING:
    from steadybot.http.app import InteractionsApp
    from steadybot.storage import Database

__all__ = ["Bot", "DeferSetting", "LifecycleHook"]

log = logging.getLogger("steadybot.bot")

DeferSetting = DeferMode | Literal["auto", "now", "never"]
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
        self._router: Router[HandlerSpec] = Router()
        self._counters = RuntimeCounters()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accepting = True
        self._app: InteractionsApp | None = None
        self._resets: SelectResetManager | None = None
        self._metrics: BotMetrics | None = None
        self._health: HealthMonitor | None = None
        self._watchdog: LoopWatchdog | None = None
        self._breakers: dict[str, CircuitBreaker] = {}
        self._on_start: list[LifecycleHook] = []
        self._on_close: list[LifecycleHook] = []
        self._started = False
        self._guards: HandlerGuards | None = None  # coordination: made on first use
        self._guards_measured = False  # its collector is registered (once per bot)
        # --- outbox (use_outbox) ---
        self._outbox: Outbox | None = None
        self._outbox_relay: OutboxRelay | None = None

    def use_clock(self, clock: Clock) -> None:
        """Run on ``clock`` from now on (tests: share a ManualClock with the emulator).
        Call before serving; the REST client is rebuilt on the new clock."""
        self.clock = clock
        self.rest = RestClient.from_settings(self.settings, clock=clock, transport=self._transport)
        self._resets = None
        self._health = None
        self._guards = None

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

        def register(func: Handler) -> Handler:
            spec = self._spec(path, func, defer, ephemeral)
            self._guard(spec, options, component=False)
            self._router.add_command(path, spec)
            return func

        return register

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
        return self._pattern_decorator(
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
        return self._pattern_decorator("modal", pattern, defer, ephemeral, guard=options)

    def autocomplete(self, path: str, *, option: str | None = None) -> Callable[[Handler], Handler]:
        """Register an autocomplete handler for a command (and one option of it)."""

        def register(func: Handler) -> Handler:
            spec = self._spec(f"{path} [autocomplete]", func, DeferMode.NEVER, False)
            self._router.add_autocomplete(path, option, spec)
            return func

        return register

    def _pattern_decorator(
        self,
        kind: str,
        pattern: str,
        defer: DeferSetting,
        ephemeral: bool,
        *,
        reset: bool | Literal["edit"] = False,
        guard: GuardOptions | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            spec = self._spec(pattern, func, defer, ephemeral)
            spec.reset = reset
            if guard is not None:
                self._guard(spec, guard, component=kind == "component")
            add = self._router.add_component if kind == "component" else self._router.add_modal
            compiled: CustomIdPattern = add(pattern, spec)
            spec.require(compiled.names)
            return func

        return register

    def _spec(self, name: str, func: Handler, defer: DeferSetting, ephemeral: bool) -> HandlerSpec:
        settings = self.settings
        tracker = LatencyTracker(
            window=settings.latency_window,
            min_samples=settings.latency_min_samples,
            percentile=settings.adaptive_percentile,
        )
        return HandlerSpec(
            name=name, func=func, defer=DeferMode(defer), ephemeral=ephemeral, tracker=tracker
        )

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
        task = asyncio.create_task(self.handle(payload, arrived_at=arrived_at, sink=sink))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def handle(
        self, payload: AnyInteraction, *, arrived_at: float, sink: InitialResponseSink
    ) -> None:
        """Handle ``payload`` in the current task (the HTTP front door's request task, or
        :meth:`dispatch`'s), tracked for shutdown until the handler is done."""
        if isinstance(payload, PingInteraction):
            raise ValueError("PING is answered by the front door")
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            self._counters.add("interactions")
            responder = Responder(
                payload,
                sink=sink,
                rest=self.rest,
                clock=self.clock,
                settings=self.settings,
                counters=self._counters,
                arrived_at=arrived_at,
                ephemeral=True,  # until a handler says otherwise
            )
            interaction = Interaction(payload, responder, rest=self.rest, clock=self.clock)
            # Routed from the Interaction, which has parsed the command path once.
            match = self._route(interaction)
            if match is not None:
                responder.ephemeral_default = match.handler.ephemeral
                interaction.args = match.args
                if match.handler.reset is True:
                    interaction.menu_resets = self.resets
            if match is None:
                await self._answer_unknown(interaction)
                return
            values: Mapping[str, object] = (
                {**interaction.options, **match.args} if match.args else interaction.options
            )
            await run_handler(
                match.handler,
                interaction,
                values,
                clock=self.clock,
                settings=self.settings,
                counters=self._counters,
            )
            if match.handler.reset:
                self._reset_menu(interaction)
        finally:
            if task is not None:
                self._tasks.discard(task)

    @property
    def resets(self) -> SelectResetManager:
        """The select-menu reset manager (made on first use)."""
        if self._resets is None:
            self._resets = SelectResetManager(
                self.rest, clock=self.clock, settings=ResetSettings.from_settings(self.settings)
            )
            self.metrics.register(self._resets.collect)
        return self._resets

    def _reset_menu(self, interaction: Interaction) -> None:
        """After a ``reset=True`` handler: the menu shows no pick again."""
        message = interaction.message
        if message is None:
            return
        if interaction.responder.state is ResponderState.MESSAGE_UPDATED:
            self.resets.reset_in_answer()
        elif message.flags & EPHEMERAL_FLAG:
            log.warning(
                "menu on ephemeral message %s: only an update() answer can reset it", message.id
            )
        else:
            self.resets.request(message.channel_id or interaction.channel_id or "", message.id)

    def _route(self, interaction: Interaction) -> RouteMatch[HandlerSpec] | None:
        router = self._router
        payload = interaction.payload
        if isinstance(payload, AutocompleteInteraction):
            return router.find_autocomplete(interaction.command_path, interaction.focused_option)
        if isinstance(payload, CommandInteraction):
            return router.find_command(interaction.command_path)
        if isinstance(payload, ComponentInteraction):
            return router.find_component(payload.data.custom_id)
        if isinstance(payload, ModalSubmitInteraction):
            return router.find_modal(payload.data.custom_id)
        return None

    async def _answer_unknown(self, interaction: Interaction) -> None:
        self._counters.add("unknown_routes")
        what = interaction.custom_id or " ".join(interaction.command_path) or "?"
        log.warning(
            "no handler for %s %r (interaction %s)", interaction.type.name, what, interaction.id
        )
        try:
            if isinstance(interaction.payload, AutocompleteInteraction):
                await interaction.autocomplete([])
            else:
                await interaction.respond(self.settings.unknown_route_message, ephemeral=True)
        except Exception:
            log.exception("could not answer the unknown route")

    # --- introspection ----------------------------------------------------------------------

    def statistics(self) -> RuntimeStatistics:
        """Counters of everything the runtime did since start."""
        return self._counters.snapshot()

    def handler_specs(self) -> list[HandlerSpec]:
        """Every registered handler (metrics read their counts)."""
        return list(self._router.handlers())

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
        existing = self._breakers.get(name)
        if existing is not None:
            return existing
        breaker = self._breakers[name] = CircuitBreaker(name, self.clock, **limits)

        def check() -> tuple[Status, str] | None:
            if breaker.state is BreakerState.CLOSED:
                return None
            return ("warning", f"breaker {name} is {breaker.state.value}: feature degraded")

        self.health.register(check)
        self.metrics.register(lambda: _breaker_metrics(breaker))
        return breaker

    # --- outbox (outbox/) -------------------------------------------------------------------

    def use_outbox(self, database: Database, *, settings: OutboxSettings | None = None) -> Outbox:
        """Deliver follow-ups recorded in transactions on ``database``: makes
        :attr:`outbox` and its relay (started and closed with the bot, in the metrics
        and the health verdict). Apply ``OUTBOX_MIGRATIONS`` first (``open_database``
        or ``await bot.outbox.migrate()`` in an ``on_start`` hook)."""
        if self._outbox is not None:
            raise RuntimeError("this bot already has an outbox")
        outbox_settings = settings or OutboxSettings.from_settings(self.settings)
        outbox = self._outbox = Outbox(database, clock=self.clock, settings=outbox_settings)
        relay = self._outbox_relay = OutboxRelay(outbox, self.rest, clock=self.clock)
        self.on_start(relay.start)
        self.on_close(relay.close)
        self.metrics.register(relay.collect)
        self.health.register(relay.health_check)
        return outbox

    @property
    def outbox(self) -> Outbox:
        """The outbox (:meth:`use_outbox` makes it): ``await bot.outbox.edit_original(
        conn, interaction, ...)`` inside the transaction that changes the state."""
        if self._outbox is None:
            raise RuntimeError("no outbox: call bot.use_outbox(database) first")
        return self._outbox

    @property
    def outbox_relay(self) -> OutboxRelay | None:
        return self._outbox_relay

    @property
    def reset_manager(self) -> SelectResetManager | None:
        """The select-reset manager if one was made (``resets`` makes it)."""
        return self._resets

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
            for spec in self._router.handlers()
        }

    @property
    def in_flight(self) -> int:
        """Handler runs and spawned work not finished yet."""
        return len(self._tasks)

    @property
    def idle(self) -> bool:
        """Nothing running: no handler, no spawned work, no pending menu reset."""
        return not self._tasks and (self._resets is None or not self._resets.pending)

    def spawn(self, work: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
        """Run ``work`` after the answer, tracked: kept alive until it ends (a bare
        ``create_task`` can be garbage-collected mid-way), waited for on shutdown like a
        handler, and counted by :attr:`in_flight`."""
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._spawned_done)
        return task

    def _spawned_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("spawned work failed", exc_info=task.exception())

    # --- coordination: locks, single flight, guarded handlers, background work -----------

    @property
    def guards(self) -> HandlerGuards:
        """The coordination behind ``exclusive=``/``serialize=``, :attr:`locks`,
        :attr:`flights` and :meth:`background` (made on first use: Redis when
        ``redis_url`` is set, else in-process). Its statistics are in the metrics."""
        if self._guards is None:
            coordination = coordination_from_settings(self.settings, self.clock)
            self._guards = HandlerGuards(coordination, clock=self.clock, settings=self.settings)
            if not self._guards_measured:  # once: use_clock may make new guards
                self._guards_measured = True
                self.metrics.register(self._guard_metrics)
        return self._guards

    def _guard_metrics(self) -> Iterator[Metric]:
        return iter(()) if self._guards is None else self._guards.collect()

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

    def _guard(self, spec: HandlerSpec, options: GuardOptions, *, component: bool) -> None:
        if not options.active:
            if options.busy is not None:
                raise ValueError(f"handler {spec.name!r}: busy= needs exclusive=")
            return
        options.check(spec.name, component=component)
        name = spec.name

        def guard(
            interaction: Interaction, call: Callable[[], Awaitable[object]]
        ) -> Awaitable[object]:
            return self.guards.run(options, name, interaction, call)

        spec.guard = guard

    # --- caches and the member cache (cache_registry.py, members.py) ------------------

    _caches: CacheRegistry | None = None
    _members: MemberCache | None = None

    @property
    def caches(self) -> CacheRegistry:
        """The bot's named caches (made on first use; started and closed with the bot)."""
        if self._caches is None:
            registry = self._caches = CacheRegistry(self.settings, lambda: self.clock)
            self.on_start(registry.start)
            self.on_close(registry.close)
            self.metrics.register(registry.collect)
            if self._started:  # first asked for after the start hooks ran
                self.spawn(registry.start())
        return self._caches

    def cache(
        self, name: str, *, max_size: int | None = None, ttl: TtlSetting = None
    ) -> BoundedCache[Any]:
        """The bounded cache called ``name``, made once per name on the bot's clock
        (``max_size`` and ``ttl`` default to ``STEADYBOT_CACHE_*``; ``ttl="never"``: no
        expiry). Annotate what it holds where you keep it:
        ``board: BoundedCache[list[Request]] = bot.cache("board", ttl=30)``."""
        return self.caches.get(name, max_size=max_size, ttl=ttl)

    @property
    def members(self) -> MemberCache:
        """The member cache (:mod:`steadybot.members`): ``get``, ``pinned``, ``warm``,
        role writes that keep it right."""
        if self._members is None:
            settings = self.settings
            cache = self.cache(
                MEMBER_CACHE_NAME,
                max_size=settings.member_cache_size,
                ttl=settings.member_cache_ttl,
            )
            members = self._members = MemberCache.from_settings(
                settings, lambda: self.rest, cache, clock=self.clock
            )
            self.on_close(members.close)
            self.metrics.register(members.collect)
        return self._members

    def warm_members(self, guild_id: str | None = None) -> None:
        """Warm the member cache when the bot starts, before it takes interactions:
        ``guild_id``'s members, or those of every guild the bot is in. A failed warm-up
        fails the start (a board that would fetch every member is not ready)."""
        self.caches  # noqa: B018 - made now, so the caches start before the warm-up

        async def warm_member_cache() -> None:
            if guild_id is None:
                await self.members.warm_all()
            else:
                await self.members.warm(guild_id)
            self.members.start()  # the periodic refresh of what was warmed

        self.on_start(warm_member_cache)

    # --- end of caches ------------------------------------------------------------------

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
                handlers=lambda: handler_codes(self._router.handlers()),
            )
            self._watchdog.start()
            watchdog = self._watchdog
            self.health.lag = lambda: max(watchdog.lags[-10:], default=0.0)
            self.metrics.register(lambda: _watchdog_metrics(watchdog))
        self.health.start()
        if not self._started:
            self._started = True
            for hook in self._on_start:
                await hook()

    async def close(self) -> None:
        """Stop taking work, give in-flight handlers ``shutdown_grace`` s, then close."""
        self._accepting = False
        if self._tasks:
            log.info(
                "shutdown: waiting up to %.1fs for %d handler(s)",
                self.settings.shutdown_grace,
                len(self._tasks),
            )
            timer = asyncio.ensure_future(self.clock.sleep(self.settings.shutdown_grace))
            try:
                # Again while new work appears: a handler may spawn some in the grace.
                while self._tasks and not timer.done():
                    waiter = asyncio.ensure_future(asyncio.wait(set(self._tasks)))
                    await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
            finally:
                timer.cancel()
            unfinished = [task for task in self._tasks if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning(
                    "shutdown: cancelled %d handler(s) past the grace period", len(unfinished)
                )
                await asyncio.gather(*unfinished, return_exceptions=True)
        if self._health is not None:
            self._health.stop()
        if self._watchdog is not None:
            self._watchdog.stop()  # after the grace: a handler blocking shutdown is named
        if self._resets is not None:
            await self._resets.close()
        if self._guards is not None:
            await self._guards.close()
        if self._started:
            self._started = False
            for hook in reversed(self._on_close):
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))
        await self.rest.close()


def _watchdog_metrics(watchdog: LoopWatchdog) -> Iterator[Metric]:
    stats = watchdog.statistics()
    yield GaugeMetricFamily(
        "steadybot_event_loop_lag_seconds", "The last measured event-loop lag.", value=stats.lag
    )
    yield GaugeMetricFamily(
        "steadybot_event_loop_lag_max_seconds",
        "The largest event-loop lag measured since start.",
        value=stats.max_lag,
    )
    yield CounterMetricFamily(
        "steadybot_event_loop_blocked",
        "Lag measurements over the watchdog's threshold.",
        value=stats.blocked,
    )


def _breaker_metrics(breaker: CircuitBreaker) -> Iterator[Metric]:
    stats = breaker.statistics()
    state = GaugeMetricFamily(
        "steadybot_breaker_open",
        "1 when the breaker is open or probing (half-open), else 0.",
        labels=["breaker"],
    )
    state.add_metric([breaker.name], 0.0 if stats.state is BreakerState.CLOSED else 1.0)
    yield state
    calls = CounterMetricFamily(
        "steadybot_breaker_calls",
        "Calls through the breaker, by result.",
        labels=["breaker", "result"],
    )
    calls.add_metric([breaker.name, "failed"], stats.failures)
    calls.add_metric([breaker.name, "rejected"], stats.rejected)
    calls.add_metric([breaker.name, "all"], stats.calls)
    yield calls
