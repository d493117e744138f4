"""How long one model request may take: fixed (`--timeout`), or scaled to the model's speed.

A fixed limit fails the slow machine and waits too long on the fast one. Without `--timeout`
the limit starts generous, then follows what this model's answered requests measured: their
times are fitted as `a × prompt tokens + b × generated tokens` (least squares, both
non-negative), and the next request may take SLACK times what that predicts for its prompt
(estimated at CHARS_PER_TOKEN, which overestimates the tokens of any common tokenizer) and
`max_tokens`, never below FLOOR_S (samples that cannot separate the two rates are fitted one
rate at a time, which overestimates). A machine that turns busy can still be slower than that:
the runner retries a timed-out trial once, with twice the limit.
"""

from __future__ import annotations

import threading

START_S = 180.0  # before anything is measured
FLOOR_S = 60.0
SLACK = 4.0
CHARS_PER_TOKEN = 2.0
MIN_SAMPLES = 3  # requests timed before the limit follows them
WINDOW = 50  # the latest requests the fit uses

Sample = tuple[float, float, float]  # prompt tokens, generated tokens, seconds


class Deadline:
    """Seconds allowed for one request of one model; thread-safe."""

    def __init__(self, max_tokens: int, fixed_s: float | None = None) -> None:
        self.max_tokens = max_tokens
        self.fixed_s = fixed_s
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def seconds(self, prompt_chars: int) -> float:
        """The limit for the next request, whose prompt has `prompt_chars` characters."""
        if self.fixed_s is not None:
            return self.fixed_s
        with self._lock:
            samples = self._samples[-WINDOW:]
        if len(samples) < MIN_SAMPLES:
            return max(START_S, self.max_tokens * 0.5)
        per_prompt, per_generated = fit(samples)
        predicted = per_prompt * prompt_chars / CHARS_PER_TOKEN + per_generated * self.max_tokens
        return max(FLOOR_S, SLACK * predicted)

    def observe(self, elapsed_s: float, prompt_tokens: int, completion_tokens: int) -> None:
        """Record one answered request."""
        if prompt_tokens + completion_tokens == 0:
            return  # a server that reports no usage says nothing about its speed
        with self._lock:
            self._samples.append((float(prompt_tokens), float(completion_tokens), elapsed_s))


def fit(samples: list[Sample]) -> tuple[float, float]:
    """Least squares of seconds = a × prompt + b × generated (no intercept), both ≥ 0.

    When the joint fit fails, each coefficient is fitted alone (an overestimate).
    """
    spp = sum(p * p for p, _, _ in samples)
    sgg = sum(g * g for _, g, _ in samples)
    spg = sum(p * g for p, g, _ in samples)
    spt = sum(p * t for p, _, t in samples)
    sgt = sum(g * t for _, g, t in samples)
    determinant = spp * sgg - spg * spg
    if determinant > 1e-9 * max(spp * sgg, 1.0):
        a = (spt * sgg - sgt * spg) / determinant
        b = (sgt * spp - spt * spg) / determinant
        if a >= 0 and b >= 0:
            return a, b
    # One coefficient would be negative, or the samples cannot tell the two apart (replies all
    # of max_tokens, prompts alike): fit each alone. Each then carries all the time, so using
    # both overestimates, as a limit should.
    return (spt / spp if spp else 0.0), (sgt / sgg if sgg else 0.0)
