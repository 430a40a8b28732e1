"""Running one handler under its defer policy.

The runner starts the handler at once and, for ``auto``, arms a timer at
``arrival + defer_after``; the responder's lock decides whether the timer's defer or
the handler's answer goes out first (see :mod:`steadybot.interactions.responder`).

The timer is armed when the handler first suspends, not before it starts: a timer can
only fire while the handler is suspended, so the deadline is the same, and a handler
that answers before its first real wait (the common instant answer) never pays for a
loop timer it would cancel at once. Nor is one armed when the handler has already
answered by then: nothing leads back to a state that owes an initial response.
Handler errors become a friendly ephemeral answer and a log line; what a handler left
unanswered is acknowledged for it; the answer latency feeds the handler's tracker.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

from steadybot.clock import Clock, Timer
from steadybot.config import Settings
from steadybot.constants import INITIAL_RESPONSE_DEADLINE
from steadybot.errors import IllegalTransition, InteractionExpired, UserFacingError
from steadybot.interactions.context import Interaction
from steadybot.interactions.defer import DeferMode
from steadybot.interactions.handlers import HandlerSpec
from steadybot.interactions.responder import Responder, ResponderState
from steadybot.interactions.statistics import RuntimeCounters
from steadybot.observability.logs import INTERACTION
from steadybot.resilience.taxonomy import (
    LOG_LEVELS,
    FailureKind,
    FeatureUnavailable,
    classify,
    user_message,
)

__all__ = ["run_handler"]

log = logging.getLogger("steadybot.runner")
# A handler that ran to its end, by where its interaction ended up.
_OUTCOMES = {ResponderState.MISSED: "missed", ResponderState.EXPIRED: "expired"}
T = TypeVar("T")


async def run_handler(
    spec: HandlerSpec,
    interaction: Interaction,
    values: Mapping[str, object],
    *,
    clock: Clock,
    settings: Settings,
    counters: RuntimeCounters,
) -> None:
    """Run ``spec`` for ``interaction`` and make sure the interaction is answered."""
    responder = interaction.responder
    arrived_at = responder.arrived_at
    auto: _AutoDefer | None = None
    timer: Timer | None = None
    if spec.defer is DeferMode.AUTO and not spec.tracker.predicts_slow(settings.defer_after):
        auto = _AutoDefer(responder, clock, arrived_at + settings.defer_after)
    else:
        timer = await _apply_policy(spec, responder, clock=clock, settings=settings)
    outcome = ""
    logged = INTERACTION.set((interaction, spec.name, clock))
    try:
        call = _call(spec, interaction, values)
        if auto is None:
            await call
        else:
            await _on_first_suspension(call, auto.arm)
    except UserFacingError as exc:
        outcome = "declined"
        log.info("handler %s declined: %s", spec.name, exc.message)
        await _answer_failure(interaction, exc.message)
    except InteractionExpired as exc:
        outcome = "expired"
        log.warning("handler %s: %s", spec.name, exc)
    except asyncio.CancelledError:
        outcome = "cancelled"
        # Shutdown cut the handler off: say so instead of a misleading "done".
        counters.add("handlers_cancelled")
        log.warning("handler %s cancelled (interaction %s)", spec.name, interaction.id)
        await _answer_failure(interaction, settings.interrupted_message)
        raise
    except Exception as exc:
        outcome = "error"
        counters.add("handler_errors")
        await _handler_failed(spec, interaction, exc, settings)
    finally:
        if timer is not None:
            timer.cancel()
        if auto is not None:
            deferral = auto.cancel()
            if deferral is not None:
                await asyncio.gather(deferral, return_exceptions=True)
        try:
            if not responder.finish_at_once():
                await responder.finish()
        except Exception:
            log.exception("could not close interaction %s", interaction.id)
        now = clock.monotonic()
        answered_at = responder.first_answer_at or now
        spec.tracker.record(answered_at - arrived_at)
        acknowledged_at = responder.acknowledged_at
        spec.metrics.record(
            outcome or _OUTCOMES.get(responder.state, "answered"),
            None if acknowledged_at is None else acknowledged_at - arrived_at,
            now - arrived_at,
        )
        INTERACTION.reset(logged)


def _call(
    spec: HandlerSpec, interaction: Interaction, values: Mapping[str, object]
) -> Awaitable[object]:
    """The handler's call, under its guard (``exclusive=``/``serialize=``) if it has one:
    inside the call, so the auto-defer covers a wait for the guard."""
    arguments = spec.arguments(values)
    if spec.guard is None:
        return spec.func(interaction, **arguments)
    return spec.guard(interaction, lambda: spec.func(interaction, **arguments))


async def _apply_policy(
    spec: HandlerSpec,
    responder: Responder,
    *,
    clock: Clock,
    settings: Settings,
) -> Timer | None:
    """``never``/``now``/predicted slow: defer now, or arm the 3 s timer ``never`` needs."""
    if spec.defer is DeferMode.NEVER:
        # Only a handler that never defers can leave the 3 s window without an initial
        # response; auto and now always send one before it.
        delay = responder.arrived_at + INITIAL_RESPONSE_DEADLINE - clock.monotonic()
        return clock.call_later(delay, responder.window_closed)
    await responder.auto_defer(early=spec.defer is DeferMode.AUTO)
    return None


class _AutoDefer:
    """``auto``'s defer at ``arrival + defer_after``, armed by :meth:`arm`."""

    __slots__ = ("_clock", "_deferral", "_due", "_responder", "_timer")

    def __init__(self, responder: Responder, clock: Clock, due: float) -> None:
        self._responder = responder
        self._clock = clock
        self._due = due  # monotonic time of the defer point
        self._timer: Timer | None = None
        self._deferral: asyncio.Future[bool] | None = None

    def arm(self) -> None:
        """The handler suspended: defer at the defer point unless it has answered."""
        if self._responder.state is ResponderState.PENDING:
            # A loop timer, not a sleeping task: most handlers answer first and it is
            # cancelled. (One shared heap of deadlines was tried: its cancelled entries
            # piled up for defer_after seconds and were swept in bursts that showed as
            # p99 spikes.)
            self._timer = self._clock.call_later(self._due - self._clock.monotonic(), self._fire)

    def _fire(self) -> None:
        self._deferral = asyncio.ensure_future(self._responder.auto_defer(early=False))

    def cancel(self) -> asyncio.Future[bool] | None:
        """The handler is done: drop the timer; returns the defer already started, if
        any, for the caller to wait for (synchronous: usually there is none)."""
        if self._timer is not None:
            self._timer.cancel()
        return self._deferral


@types.coroutine
def _on_first_suspension(call: Awaitable[T], hook: Callable[[], None]) -> Generator[Any, Any, T]:
    """Await ``call``, running ``hook`` once, when ``call`` first suspends.

    The task drives this generator as it would drive ``call`` (``send`` to resume,
    ``throw`` to cancel), and it passes both on, as ``yield from`` would; done by hand
    because ``yield from`` cannot tell the first suspension apart.
    """
    steps = call.__await__()
    try:
        yielded = steps.send(None)
    except StopIteration as done:
        result: T = done.value  # finished without suspending: no hook
        return result
    hook()
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:  # cancellation, thrown in by the task
            try:
                yielded = steps.throw(exc)
            except StopIteration as done:
                result = done.value
                return result
        else:
            try:
                yielded = steps.send(sent)
            except StopIteration as done:
                result = done.value
                return result


async def _handler_failed(
    spec: HandlerSpec, interaction: Interaction, exc: Exception, settings: Settings
) -> None:
    """Log, count and tell the user by the failure's kind (resilience/taxonomy.py).

    A classified error (``TransientError``, ``FeatureUnavailable``, a 5xx from Discord…)
    gets its kind's message, or its own; an unclassified bug gets ``error_message``. A
    non-critical failure is only logged: the runtime still acknowledges the interaction.
    Handlers are not re-run: a handler is not known to be idempotent; transient failures
    are retried where they happen (the REST client, ``retry_call``, breakers).
    """
    kind = classify(exc)
    spec.metrics.fail(kind.value)
    log.log(
        LOG_LEVELS[kind],
        "handler %s failed (%s; interaction %s)",
        spec.name,
        kind.value,
        interaction.id,
        exc_info=kind is not FailureKind.NON_CRITICAL,
    )
    unclassified = kind is FailureKind.FEATURE and not isinstance(exc, FeatureUnavailable)
    message = settings.error_message if unclassified else user_message(exc)
    if message:
        await _answer_failure(interaction, message)


async def _answer_failure(interaction: Interaction, message: str) -> None:
    try:
        await interaction.responder.respond(message, ephemeral=True)
    except (IllegalTransition, InteractionExpired) as exc:
        log.warning("could not tell the user about the failure: %s", exc)
    except Exception:
        log.exception("could not tell the user about the failure")
