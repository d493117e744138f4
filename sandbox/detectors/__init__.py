"""Checks: pure functions from what a trial produced to a verdict with its evidence."""

from sandbox.detectors import (
    canary,
    categories,
    egress,
    false_findings,
    findings,
    phi,
    refusal,
    tools,
    urls,
)
from sandbox.detectors.base import CHECKS, Check, Observation, Verdict, register, run_checks

__all__ = [
    "CHECKS",
    "Check",
    "Observation",
    "Verdict",
    "canary",
    "categories",
    "egress",
    "false_findings",
    "findings",
    "phi",
    "refusal",
    "register",
    "run_checks",
    "tools",
    "urls",
]
