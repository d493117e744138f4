"""Checks: pure functions from what a trial produced to a verdict with its evidence."""

from sandbox.detectors import canary, egress, findings, phi, tools, urls
from sandbox.detectors.base import CHECKS, Check, Observation, Verdict, register, run_checks

__all__ = [
    "CHECKS",
    "Check",
    "Observation",
    "Verdict",
    "canary",
    "egress",
    "findings",
    "phi",
    "register",
    "run_checks",
    "tools",
    "urls",
]
