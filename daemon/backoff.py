"""Jittered exponential backoff for loops that retry forever (flusher, reconnects).

Bounded retries of single requests use tenacity (`daemon.http.with_retries`); this is the
small state machine for "keep trying, wait longer each time, start over after a success".
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Full-jitter exponential backoff: the n-th delay is uniform in [base·2ⁿ/2, base·2ⁿ],
    capped at `cap`. `reset()` after a success."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0, rng: random.Random | None = None):
        self.initial = initial
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay of attempt `attempt` (no jitter)."""
        return min(self.cap, self.initial * 2.0 ** min(attempt, 30))

    def next(self) -> float:
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
