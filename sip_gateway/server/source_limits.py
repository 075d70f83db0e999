"""Per-source request limits: a token bucket per source address (RFC 3261 21.5.4's 503
with Retry-After for the excess), checked before a datagram is parsed.

Theory of operation: each source address has two buckets filled at `rate` tokens a
second up to `burst`: one for requests served, one for refusals answered. A request
takes a token from the first and is served; when that is empty it takes one from the
second and is answered 503 with Retry-After; when both are empty it is dropped
unanswered, so that a flood costs at most twice the rate in work, and the answers to it
no more than the rate. Exempt sources (the trusted networks: proxies and registrars
that speak for many UAs) are not counted. The table of sources is a bounded LRU: a
flood of spoofed addresses evicts the sources seen longest ago, each of which would
start again with full buckets, and memory stays bounded. No clock here: `now` comes in.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable

CAPACITY = 65_536  # sources remembered


class Verdict(enum.Enum):
    SERVE = "serve"
    REFUSE = "refuse"  # 503 with Retry-After
    DROP = "drop"  # no answer at all


class SourceLimits:
    def __init__(self, rate: float, burst: float, exempt: Callable[[str], bool] = lambda _: False,
                 capacity: int = CAPACITY) -> None:
        self.rate, self.burst, self.exempt, self.capacity = rate, max(burst, 1.0), exempt, capacity
        self._sources: OrderedDict[str, list[float]] = OrderedDict()  # [served, refused, at]

    def __len__(self) -> int:
        return len(self._sources)

    def check(self, source: str, now: float) -> Verdict:
        """Count one request from `source` and say what to do with it."""
        buckets = self._sources.get(source)
        if buckets is None:
            if self.exempt(source):
                return Verdict.SERVE
            buckets = self._sources[source] = [self.burst, self.burst, now]
            if len(self._sources) > self.capacity:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
            gained = (now - buckets[2]) * self.rate
            if gained > 0:
                buckets[0] = min(self.burst, buckets[0] + gained)
                buckets[1] = min(self.burst, buckets[1] + gained)
                buckets[2] = now
        if buckets[0] >= 1:
            buckets[0] -= 1
            return Verdict.SERVE
        if buckets[1] >= 1:
            buckets[1] -= 1
            return Verdict.REFUSE
        return Verdict.DROP
