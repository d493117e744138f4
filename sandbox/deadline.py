"""How long one model request may take: fixed (`--timeout`), or scaled to the model's speed.

A fixed limit fails the slow machine and waits too long on the fast one. Without `--timeout`
the limit starts generous, then follows what the requests of this model measured: SLACK times
`max_tokens` at the median seconds per generated token (prompt processing included, so the
estimate errs long), never below FLOOR_S. A busy machine can still be slower than that for a
while: the runner retries a timed-out trial once, with twice the limit.
"""

from __future__ import annotations

import statistics
import threading

START_S = 180.0  # before anything is measured
FLOOR_S = 30.0
SLACK = 4.0
MIN_SAMPLES = 3  # requests timed before the limit follows them
MIN_TOKENS = 8  # shorter replies say little about decode speed
WINDOW = 50  # the latest requests the median is taken over


class Deadline:
    """Seconds allowed for one request of one model; thread-safe."""

    def __init__(self, max_tokens: int, fixed_s: float | None = None) -> None:
        self.max_tokens = max_tokens
        self.fixed_s = fixed_s
        self._per_token: list[float] = []
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """The limit for the next request."""
        if self.fixed_s is not None:
            return self.fixed_s
        with self._lock:
            if len(self._per_token) < MIN_SAMPLES:
                return max(START_S, self.max_tokens * 0.5)
            per_token = statistics.median(self._per_token[-WINDOW:])
        return max(FLOOR_S, SLACK * self.max_tokens * per_token)

    def observe(self, elapsed_s: float, completion_tokens: int) -> None:
        """Record one answered request."""
        if completion_tokens < MIN_TOKENS:
            return
        with self._lock:
            self._per_token.append(elapsed_s / completion_tokens)
