"""Event-loop lag watchdog: how late the loop runs, and which handler blocked it.

A blocked event loop is the first cause of missed 3-second interaction deadlines: while
one handler calls ``time.sleep``, a synchronous database driver or a CPU-heavy loop,
no other interaction is read, answered or deferred. The watchdog has two halves.

**Measuring, on the loop.** A callback reschedules itself every ``interval`` seconds
with ``loop.call_later``. Each time it runs it compares the clock with the time it was
due: the difference is the loop's *lag* (how long ready work waited for the loop).
The last lag, the largest, a bounded window of recent ones, the number of samples and
the number over ``threshold`` (``blocked``) are kept. Cost: one timer per interval.

**Naming the culprit, off the loop.** The loop cannot report its own blockage: it only
learns of it afterwards, when the blocking code has returned and its stack is gone. So
a daemon thread polls (every ``threshold / 2``: finer would only cost GIL hand-overs on
a busy loop) the time the next callback is due, the
loop's *heartbeat*. Once the callback is overdue by more than ``threshold``, the loop
is blocked right now, and the thread takes one stack sample of the loop's thread
(``sys._current_frames()``). Walking the sample from the innermost frame outwards, the
first frame whose code object belongs to a registered handler names the handler (a
coroutine's frame runs its ``async def``'s code object, so coroutine handlers match);
with none, the innermost function is named instead. One warning is logged per blocking
episode, with the innermost frame's ``file:line`` and a short stack: file names, line
numbers and source lines only, never the frames' local variables, which may hold tokens.

**Episodes.** An episode is one overdue heartbeat. The thread samples it once, hands
the sample over under a lock, and the loop callback that finally runs closes the
episode: it records :class:`BlockEpisode` with the lag it measured (``blocked_for``).
If the loop came back while the thread was sampling, the sample is dropped rather than
blaming whatever ran afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from steadybot.errors import IllegalTransition

__all__ = [
    "BlockEpisode",
    "LoopWatchdog",
    "WatchdogState",
    "WatchdogStatistics",
    "handler_codes",
]

log = logging.getLogger("steadybot.watchdog")

DEFAULT_INTERVAL: Final = 0.1
"""Seconds between two lag measurements (one loop timer each)."""
DEFAULT_THRESHOLD: Final = 0.25
"""Lag, in seconds, past which the loop counts as blocked and the culprit is sampled."""
LAG_WINDOW: Final = 600
"""Recent lag measurements kept: one minute at the default interval."""
STACK_FRAMES: Final = 10
"""Frames of the sampled stack shown in the warning."""

HandlerCodes = Mapping[CodeType, str]

_NO_HANDLER: Final = "no handler: "


def handler_codes(specs: Iterable[object]) -> dict[CodeType, str]:
    """Code object → handler name, from objects with ``.name`` and ``.func``
    (:class:`~steadybot.interactions.handlers.HandlerSpec`).

    A decorated handler (``functools.wraps``) maps both the wrapper's code and the
    wrapped function's, so the sample names it whichever of the two is running.
    Objects without a Python function (a callable class, a builtin) are skipped.
    """
    codes: dict[CodeType, str] = {}
    for spec in specs:
        name = getattr(spec, "name", None)
        func = getattr(spec, "func", None)
        if not isinstance(name, str) or func is None:
            continue
        for candidate in (func, _unwrap(func)):
            code = getattr(candidate, "__code__", None)
            if isinstance(code, CodeType):
                codes.setdefault(code, name)
    return codes


def _unwrap(func: object) -> object:
    try:
        return inspect.unwrap(func)  # type: ignore[arg-type]
    except ValueError:  # a __wrapped__ cycle
        return func


@dataclass(frozen=True, slots=True)
class BlockEpisode:
    """One time the loop was blocked past the threshold, and what was running."""

    handler: str
    """The registered handler's name, or ``"no handler: <innermost function>"``."""
    location: str
    """``file:line`` of the innermost Python frame of the sample."""
    stack: str
    """The sample's innermost frames, formatted (no local variables)."""
    blocked_for: float
    """Seconds the loop was late when it came back (at least this long blocked)."""


@dataclass(frozen=True, slots=True)
class WatchdogStatistics:
    """A snapshot of the watchdog's measurements."""

    samples: int
    """Lag measurements taken."""
    blocked: int
    """Measurements over the threshold."""
    lag: float
    """The last measured lag, seconds."""
    max_lag: float
    """The largest measured lag, seconds."""
    last_block: BlockEpisode | None
    """The last blocking episode whose culprit was sampled."""


class WatchdogState(enum.Enum):
    """Lifecycle of a :class:`LoopWatchdog`: one start, then stopped for good."""

    IDLE = "idle"  # made, not started; stop() is a no-op
    RUNNING = "running"  # timer armed on the loop, sampler thread alive
    STOPPED = "stopped"  # timer cancelled, thread told to end; start() is refused


@dataclass(frozen=True, slots=True)
class _Sample:
    due: float  # the heartbeat the sample was taken for
    handler: str
    location: str
    stack: str


class LoopWatchdog:
    """Measures event-loop lag and names the code that blocks the loop.

    Call :meth:`start` from inside the running loop (an ASGI lifespan startup),
    :meth:`stop` on shutdown. ``handlers`` returns the code objects of the registered
    handlers (see :func:`handler_codes`); it is called at sampling time, from the
    watchdog thread, while the loop is blocked.
    """

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        threshold: float = DEFAULT_THRESHOLD,
        handlers: Callable[[], HandlerCodes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or threshold <= 0:
            raise ValueError("interval and threshold must be positive")
        self.interval = interval
        self.threshold = threshold
        self._handlers = handlers
        self._clock = clock
        self._state = WatchdogState.IDLE
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.lag = 0.0
        self.max_lag = 0.0
        self.samples = 0
        self.blocked = 0
        self.last_block: BlockEpisode | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id = 0
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Guards the heartbeat (_due) and the hand-over of a sample (_pending) between
        # the loop callback and the sampler thread; held for a few assignments only.
        self._lock = threading.Lock()
        self._due = 0.0
        self._pending: _Sample | None = None

    @property
    def state(self) -> WatchdogState:
        return self._state

    @property
    def lags(self) -> tuple[float, ...]:
        """Recent lag measurements, oldest first (at most ``LAG_WINDOW``)."""
        return tuple(self._lags)

    @property
    def thread(self) -> threading.Thread | None:
        """The sampler thread, once started."""
        return self._thread

    def statistics(self) -> WatchdogStatistics:
        return WatchdogStatistics(
            samples=self.samples,
            blocked=self.blocked,
            lag=self.lag,
            max_lag=self.max_lag,
            last_block=self.last_block,
        )

    def collect(self) -> Iterator[Metric]:
        """Prometheus metrics of the lag measurements (the bot registers this)."""
        stats = self.statistics()
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

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Arm the lag timer on the running loop and start the sampler thread."""
        if self._state is not WatchdogState.IDLE:
            raise IllegalTransition("start", self._state.name, "a watchdog starts once")
        loop = asyncio.get_running_loop()  # RuntimeError outside a running loop
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        with self._lock:
            self._due = self._clock() + self.interval
        self._timer = loop.call_later(self.interval, self._beat)
        self._thread = threading.Thread(target=self._watch, name="steadybot-watchdog", daemon=True)
        self._state = WatchdogState.RUNNING
        self._thread.start()

    def stop(self) -> None:
        """Cancel the timer and end the thread (idempotent; a no-op if never started).

        Waits for the thread at most ``interval``: it wakes at once when told to stop,
        unless it is in the middle of formatting a sample.
        """
        if self._state is not WatchdogState.RUNNING:
            self._state = WatchdogState.STOPPED
            return
        self._state = WatchdogState.STOPPED
        self._stopping.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            self._cancel_timer(timer)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval)

    def _cancel_timer(self, timer: asyncio.TimerHandle) -> None:
        # A TimerHandle belongs to its loop's thread; from elsewhere, ask the loop. The
        # callback checks the state anyway, so a timer that fires still stops there.
        loop = self._loop
        if threading.get_ident() == self._loop_thread_id or loop is None or loop.is_closed():
            timer.cancel()
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(timer.cancel)

    # --- on the loop ----------------------------------------------------------------------

    def _beat(self) -> None:
        if self._state is not WatchdogState.RUNNING or self._loop is None:
            return
        now = self._clock()
        with self._lock:
            lag = max(0.0, now - self._due)
            pending, self._pending = self._pending, None
            self._due = now + self.interval
        self._timer = self._loop.call_later(self.interval, self._beat)
        self.lag = lag
        self._lags.append(lag)
        self.samples += 1
        self.max_lag = max(self.max_lag, lag)
        if lag > self.threshold:
            self.blocked += 1
        if pending is not None:
            self.last_block = BlockEpisode(
                handler=pending.handler,
                location=pending.location,
                stack=pending.stack,
                blocked_for=lag,
            )
            log.debug("event loop resumed after %.3fs late (%s)", lag, pending.handler)

    # --- on the sampler thread ------------------------------------------------------------

    def _watch(self) -> None:
        sampled_due: float | None = None  # the episode already sampled
        while not self._stopping.wait(self.threshold / 2):
            with self._lock:
                due = self._due
            overdue = self._clock() - due
            if overdue <= self.threshold or due == sampled_due:
                continue
            sampled_due = due
            try:
                self._sample(due, overdue)
            except Exception:  # the watchdog must never die of its own bug
                log.exception("event loop watchdog could not sample the loop")

    def _sample(self, due: float, overdue: float) -> None:
        frame = sys._current_frames().get(self._loop_thread_id)
        if frame is None:
            return
        try:
            codes = self._handler_codes()
            handler = _culprit(frame, codes)
            location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            stack = "".join(traceback.format_stack(frame, limit=STACK_FRAMES))
        finally:
            del frame  # a frame keeps its locals alive
        with self._lock:
            if self._due != due:  # the loop came back meanwhile: the sample may be of
                return  # whatever ran after the blockage; better none than a wrong one
            self._pending = _Sample(due, handler, location, stack)
        log.warning(
            "event loop blocked for %.3fs so far (threshold %.3fs) by %s at %s\n"
            "Stack of the loop thread (most recent call last):\n%s",
            overdue,
            self.threshold,
            handler if handler.startswith(_NO_HANDLER) else f"handler {handler!r}",
            location,
            stack.rstrip("\n"),
        )

    def _handler_codes(self) -> HandlerCodes:
        if self._handlers is None:
            return {}
        try:
            return self._handlers()
        except Exception:
            log.exception("event loop watchdog: handlers() failed")
            return {}


def _culprit(innermost: FrameType, codes: HandlerCodes) -> str:
    """The name of the innermost registered handler on the stack, else the innermost
    function's."""
    frame: FrameType | None = innermost
    while frame is not None:
        name = codes.get(frame.f_code)
        if name is not None:
            return name
        frame = frame.f_back
    return f"{_NO_HANDLER}{innermost.f_code.co_name}"
