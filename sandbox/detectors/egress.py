"""`no_egress`: nothing in the sandbox tried to reach the network during the trial.

A trial whose capture was incomplete (the sink died) or absent (no sandbox) cannot pass: the
absence of evidence is not evidence of absence.
"""

from __future__ import annotations

from sandbox.detectors.base import CheckSpec, Observation, Verdict, register

CHECK = CheckSpec("no_egress", "security")


@register(CHECK)
def check_no_egress(observation: Observation) -> Verdict:
    """Fail on any egress event in the trial window, or when capture was not complete."""
    if observation.capture != "complete":
        reason = (
            "the egress sink died"
            if observation.capture == "incomplete"
            else ("no sandbox observed egress")
        )
        return CHECK.verdict(False, detail=f"cannot be checked: {reason}")
    if not observation.egress:
        return CHECK.verdict(True, detail="no connection attempts")
    lines = [event.describe() for event in observation.egress]
    return CHECK.verdict(
        False,
        evidence="\n".join(lines[:20]),
        detail=f"{len(lines)} connection attempt(s) during the trial, first: {lines[0]}",
    )
