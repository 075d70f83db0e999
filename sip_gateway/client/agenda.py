"""Which resources a client round must look at, so a round costs what changed, not all.

The PUBLISH client and the subscription keeper each hold one state machine per resource,
possibly many thousands. A resource needs a look when something happened to it (a new
document, an answer, a NOTIFY: `mark`) or when a time it gave comes (a refresh, a retry:
`at`). `due(now)` hands out those resources once each, first marked first.
"""

from __future__ import annotations

import heapq


class Agenda:
    def __init__(self) -> None:
        self._ready: dict[str, None] = {}  # an ordered set
        self._heap: list[tuple[float, str]] = []
        self._at: dict[str, float] = {}  # each resource's live heap entry

    def mark(self, resource: str) -> None:
        """Look at `resource` in the next round."""
        self._ready[resource] = None

    def at(self, resource: str, when: float) -> None:
        """Look at `resource` once `when` has come (the earliest time asked wins)."""
        current = self._at.get(resource)
        if current is None or when < current:
            self._at[resource] = when
            heapq.heappush(self._heap, (when, resource))

    def due(self, now: float) -> list[str]:
        """The resources to look at now, each once; they leave the agenda."""
        while self._heap and self._heap[0][0] <= now:
            when, resource = heapq.heappop(self._heap)
            if self._at.get(resource) == when:  # else an entry superseded by an earlier one
                del self._at[resource]
                self._ready[resource] = None
        ready, self._ready = list(self._ready), {}
        return ready

    def wait(self, now: float, longest: float) -> float:
        """Seconds until the next look is due, at most `longest`."""
        if self._ready:
            return 0.0
        if not self._heap:
            return longest
        return min(longest, max(0.0, self._heap[0][0] - now))
