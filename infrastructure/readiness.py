"""Whether this node should take traffic: what `/health/ready` and OPTIONS answer.

Not ready while it drains at shutdown, while the event store is away (every REGISTER
would get 503), or while the usrloc view has been behind the store for longer than
`[metrics] ready_max_lag` seconds (lookups would miss bindings that were acknowledged).
A node that is not ready is still live: it answers, and comes back by itself.
"""

from __future__ import annotations


class ViewLag:
    """How long the usrloc view has been behind the store, from the positions serve reads
    every second. A lag starts when the view is first seen behind; it goes on while the
    view has not reached the head it was behind then, and ends when it is caught up."""

    def __init__(self) -> None:
        self.behind_since: float | None = None
        self._target = 0  # the head the view was behind when this lag was measured from

    def observe(self, position: int, head: int, now: float) -> None:
        if position >= head:
            self.behind_since = None
        elif self.behind_since is None or position >= self._target:
            self.behind_since, self._target = now, head

    def seconds(self, now: float) -> float:
        return 0.0 if self.behind_since is None else max(0.0, now - self.behind_since)


def not_ready(stopping: bool, store_down: str | None, lag: float,
              max_lag: float) -> str | None:
    """Why the node should take no traffic now; None when it should."""
    if stopping:
        return "shutting down"
    if store_down is not None:
        return f"event store unavailable: {store_down}"
    if lag > max_lag:
        return f"the usrloc view is {lag:.0f} s behind the event store"
    return None
