"""Running one handler under its defer policy.

The runner starts the handler at once and, for ``auto``, arms a timer at
``arrival + defer_after``; the responder's lock decides whether the timer's defer or
the handler's answer goes out first (see :mod:`steadybot.interactions.responder`).
Handler errors become a friendly ephemeral answer and a log line; what a handler left
unanswered is acknowledged for it; the answer latency feeds the handler's tracker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from steadybot.clock import Clock, Timer
from steadybot.config import Settings
from steadybot.constants import INITIAL_RESPONSE_DEADLINE
from steadybot.errors import IllegalTransition, InteractionExpired, UserFacingError
from steadybot.interactions.context import Interaction
from steadybot.interactions.defer import DeferMode
from steadybot.interactions.handlers import HandlerSpec
from steadybot.interactions.responder import Responder
from steadybot.interactions.statistics import RuntimeCounters

__all__ = ["run_handler"]

log = logging.getLogger("steadybot.runner")


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
    deferral: list[asyncio.Task[bool]] = []
    if spec.defer is DeferMode.AUTO and not spec.tracker.predicts_slow(settings.defer_after):
        timer: Timer | None = _arm_defer(responder, clock, settings.defer_after, deferral)
    else:
        timer = await _apply_policy(spec, responder, clock=clock, settings=settings)
    try:
        await spec.func(interaction, **spec.arguments(values))
    except UserFacingError as exc:
        log.info("handler %s declined: %s", spec.name, exc.message)
        await _answer_failure(interaction, exc.message)
    except InteractionExpired as exc:
        log.warning("handler %s: %s", spec.name, exc)
    except asyncio.CancelledError:
        # Shutdown cut the handler off: say so instead of a misleading "done".
        counters.add("handlers_cancelled")
        log.warning("handler %s cancelled (interaction %s)", spec.name, interaction.id)
        await _answer_failure(interaction, settings.interrupted_message)
        raise
    except Exception:
        counters.add("handler_errors")
        log.exception("handler %s failed (interaction %s)", spec.name, interaction.id)
        await _answer_failure(interaction, settings.error_message)
    finally:
        if timer is not None:
            timer.cancel()
        if deferral:
            await asyncio.gather(*deferral, return_exceptions=True)
        try:
            if not responder.finish_at_once():
                await responder.finish()
        except Exception:
            log.exception("could not close interaction %s", interaction.id)
        answered_at = responder.first_answer_at or clock.monotonic()
        spec.tracker.record(answered_at - responder.arrived_at)


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


def _arm_defer(
    responder: Responder, clock: Clock, defer_after: float, into: list[asyncio.Task[bool]]
) -> Timer:
    """``auto``'s defer at ``arrival + defer_after``; synchronous, for the hot path."""

    # A loop timer, not a sleeping task: most handlers answer first and it is
    # cancelled. (One shared heap of deadlines was tried: its cancelled entries piled up
    # for defer_after seconds and were swept in bursts that showed as p99 spikes.)
    def defer_now() -> None:
        into.append(asyncio.ensure_future(responder.auto_defer(early=False)))

    return clock.call_later(responder.arrived_at + defer_after - clock.monotonic(), defer_now)


async def _answer_failure(interaction: Interaction, message: str) -> None:
    try:
        await interaction.responder.respond(message, ephemeral=True)
    except (IllegalTransition, InteractionExpired) as exc:
        log.warning("could not tell the user about the failure: %s", exc)
    except Exception:
        log.exception("could not tell the user about the failure")
