"""Crowds of simulated users that drive a bot through the emulator, and their reports."""

from steadybot.crowd.report import Check, CrowdReport, Followups, LatencySummary
from steadybot.crowd.runner import CrowdUser, Scenario, run_crowd

__all__ = [
    "Check",
    "CrowdReport",
    "CrowdUser",
    "Followups",
    "LatencySummary",
    "Scenario",
    "run_crowd",
]
