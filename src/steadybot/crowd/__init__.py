"""Crowds of simulated users that drive a bot through the emulator, and their reports."""

from steadybot.crowd.report import Check, CrowdReport, Followups, LatencySummary
from steadybot.crowd.runner import CrowdUser, Scenario, run_crowd, take_snapshot
from steadybot.crowd.target import CrowdTarget, RemoteEmulator, RemoteEmulatorError

__all__ = [
    "Check",
    "CrowdReport",
    "CrowdTarget",
    "CrowdUser",
    "Followups",
    "LatencySummary",
    "RemoteEmulator",
    "RemoteEmulatorError",
    "Scenario",
    "run_crowd",
    "take_snapshot",
]
