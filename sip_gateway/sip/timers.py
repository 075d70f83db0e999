"""Transaction timer values (RFC 3261 17.1.2.2, 17.2.2, table 4) and what both machines share."""

from __future__ import annotations

from dataclasses import dataclass

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 8.1.1.7: a branch that starts with it is unique per request

TRYING, PROCEEDING, COMPLETED, TERMINATED = "trying", "proceeding", "completed", "terminated"


@dataclass(frozen=True)
class TimerValues:
    """T1, T2, T4 and the non-INVITE timers derived from them (RFC 3261 17, table 4)."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # longest retransmit interval of non-INVITE requests
    t4: float = 5.0  # longest time a message stays in the network

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2 or self.t4 < 0:
            raise ValueError(f"want 0 < T1 <= T2 and T4 >= 0, got {self}")

    def e_after(self, interval: float) -> float:
        """Timer E's next interval in Trying: doubled, at most T2 (17.1.2.2)."""
        return min(2 * interval, self.t2)

    @property
    def f(self) -> float:
        """Timer F, the client's timeout: 64*T1."""
        return 64 * self.t1

    def k(self, reliable: bool) -> float:
        """Timer K, the client's wait for response retransmissions: T4, 0 when reliable."""
        return 0.0 if reliable else self.t4

    def j(self, reliable: bool) -> float:
        """Timer J, the server's wait for request retransmissions: 64*T1, 0 when reliable."""
        return 0.0 if reliable else 64 * self.t1
