"""Interaction payloads, the Responder state machine, defer policy and routing."""

from steadybot.interactions.context import Interaction, ResolvedOption
from steadybot.interactions.defer import DeferMode, LatencyStatistics, LatencyTracker
from steadybot.interactions.handlers import Handler, HandlerSpec
from steadybot.interactions.payload import (
    AnyInteraction,
    ApplicationCommandData,
    AutocompleteInteraction,
    CommandInteraction,
    CommandOption,
    ComponentInteraction,
    MessageComponentData,
    ModalSubmitData,
    ModalSubmitInteraction,
    PingInteraction,
    ResolvedData,
    decode_interaction,
)
from steadybot.interactions.progress import ProgressReporter
from steadybot.interactions.responder import Responder, ResponderState
from steadybot.interactions.routing import CustomIdPattern, RouteMatch, Router
from steadybot.interactions.sinks import (
    CallbackSink,
    HttpReplySink,
    InitialResponseRejected,
    InitialResponseSink,
)
from steadybot.interactions.statistics import RuntimeCounters, RuntimeStatistics

__all__ = [
    "AnyInteraction",
    "ApplicationCommandData",
    "AutocompleteInteraction",
    "CallbackSink",
    "CommandInteraction",
    "CommandOption",
    "ComponentInteraction",
    "CustomIdPattern",
    "DeferMode",
    "Handler",
    "HandlerSpec",
    "HttpReplySink",
    "InitialResponseRejected",
    "InitialResponseSink",
    "Interaction",
    "LatencyStatistics",
    "LatencyTracker",
    "MessageComponentData",
    "ModalSubmitData",
    "ModalSubmitInteraction",
    "PingInteraction",
    "ProgressReporter",
    "ResolvedData",
    "ResolvedOption",
    "Responder",
    "ResponderState",
    "RouteMatch",
    "Router",
    "RuntimeCounters",
    "RuntimeStatistics",
    "decode_interaction",
]
