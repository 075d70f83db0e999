"""Replay protection (RFC 7616 3.3 and 5.4, `nc`): each (nonce, nc) is accepted once.

Theory of operation: a UA reusing a nonce counts its requests up (nc=00000001, 2, ...).
The table keeps, per nonce, the highest nc accepted and the request (Call-ID, CSeq) that
used it: a lower or equal nc is refused (NonceReused, 401 with a fresh nonce), unless it
is that very request again (a UDP retransmission, which the registrar answers as the
same request). Entries go when their nonce would be stale anyway (issued + lifetime).
The table is bounded: when full, the entry used longest ago goes, and every nonce issued
no later than it and not in the table is refused from then on (it might have been used),
so that a flood of fresh nonces costs memory up to the bound, never a replay.

One table per serve: its UDP workers ask serve (the RegistrationPort's `admit`), so that a
nonce is counted once whichever process took the request. Nonces are bound to their
serve's secret, so no other node accepts them (nonces.py).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sip_gateway.errors import NonceReused

CAPACITY = 100_000


@dataclass(frozen=True)
class NonceUse:
    """One request's use of a nonce: what the table checks."""

    nonce: str
    issued: int  # Unix seconds, from the nonce
    nc: int
    callid: str
    cseq: int


class NonceCounts:
    def __init__(self, lifetime: int, capacity: int = CAPACITY) -> None:
        self.lifetime, self.capacity = lifetime, capacity
        self._seen: OrderedDict[str, tuple[int, int, str, int]] = OrderedDict()
        self._horizon = -1  # nonces issued at or before this and unknown are refused

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, use: NonceUse, now: float) -> None:
        """Record `use`, or raise NonceReused if its (nonce, nc) was used by another request."""
        self._forget_stale(now)
        if now - use.issued > self.lifetime:  # went stale on its way here: forgotten
            raise NonceReused("nonce stale")
        seen = self._seen.get(use.nonce)
        if seen is None:
            if use.issued <= self._horizon:
                raise NonceReused("nonce no longer tracked")
        else:
            _, highest, callid, cseq = seen
            if use.nc <= highest:
                if use.nc == highest and (use.callid, use.cseq) == (callid, cseq):
                    self._seen.move_to_end(use.nonce)
                    return  # a retransmission of the request that used it
                raise NonceReused(f"nonce count {use.nc:08x} already used")
        self._seen[use.nonce] = (use.issued, use.nc, use.callid, use.cseq)
        self._seen.move_to_end(use.nonce)
        while len(self._seen) > self.capacity:
            _, (issued, *_) = self._seen.popitem(last=False)
            self._horizon = max(self._horizon, issued)

    def _forget_stale(self, now: float) -> None:
        seen, oldest = self._seen, now - self.lifetime
        while seen:
            first = next(iter(seen.values()))
            if first[0] >= oldest:
                break
            seen.popitem(last=False)
