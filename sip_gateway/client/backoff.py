"""Exponential back-off with full jitter, for retrying PUBLISH and SUBSCRIBE.

The n-th consecutive failure waits uniform(0, min(cap, base * factor**(n-1))) seconds:
spread out so that many publications or subscriptions failing together (a presence
server restart) do not retry in lockstep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with full jitter: random() * min(cap, base * factor**(n-1))."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0

    def ceiling(self, failures: int) -> float:
        exponent = min(max(failures - 1, 0), 64)  # beyond 2**64 the cap has long won
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, failures: int, random: Callable[[], float]) -> float:
        return min(max(random(), 0.0), 1.0) * self.ceiling(failures)
