"""Non-INVITE server transactions and the layer that matches requests to them (RFC 3261 17.2).

Theory of operation (17.2.2, figure 8). A request that matches no transaction creates one
in Trying and goes up to the transaction user (TU); the same request again is a
retransmission. In Trying it is absorbed, for the TU has not answered yet. A provisional
response from the TU moves the transaction to Proceeding, a final one to Completed; the
bytes of the last response are kept and sent again for every retransmission. Completed
starts timer J (64*T1 on UDP, 0 on TCP/TLS) to absorb the client's retransmissions; when it
fires the transaction is Terminated and forgotten. Responses the TU passes after the final
one are discarded (17.2.2). A transport failure terminates at once (17.2.4).

Matching (17.2.3): on the top Via's branch, its sent-by and the method when the branch
starts with the magic cookie; otherwise on the RFC 2543 fields (Request-URI, To tag, From
tag, Call-ID, CSeq, top Via). Branches are tokens and compared case-insensitively (7.3.1).
The layer holds at most `max_transactions`: a new request beyond that is refused without
state, so that the shell can answer 503 statelessly.

No clock, no socket: `now` comes in, bytes go out, `next_deadline` says when to `expire`.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from sip_gateway.errors import MalformedMessage
from sip_gateway.sip.machine import TransactionMisuse, step
from sip_gateway.sip.message import SipRequest, SipResponse
from sip_gateway.sip.timers import (
    COMPLETED,
    MAGIC_COOKIE,
    PROCEEDING,
    TERMINATED,
    TRYING,
    TimerValues,
)
from sip_gateway.sip.values import CSeq, NameAddr, Via

REQUEST, PROVISIONAL, FINAL, TIMER_J, TRANSPORT_ERROR = (
    "request", "provisional", "final", "timer_j", "transport_error")

# (state, event) -> next state. REQUEST is a retransmission: absorbed in Trying, answered
# with the last response in Proceeding and Completed. A response not in the table (one
# after the final response) is discarded.
SERVER_MACHINE: dict[tuple[str, str], str] = {
    (TRYING, REQUEST): TRYING,
    (TRYING, PROVISIONAL): PROCEEDING,
    (TRYING, FINAL): COMPLETED,
    (TRYING, TRANSPORT_ERROR): TERMINATED,
    (PROCEEDING, REQUEST): PROCEEDING,
    (PROCEEDING, PROVISIONAL): PROCEEDING,
    (PROCEEDING, FINAL): COMPLETED,
    (PROCEEDING, TRANSPORT_ERROR): TERMINATED,
    (COMPLETED, REQUEST): COMPLETED,
    (COMPLETED, TIMER_J): TERMINATED,
    (COMPLETED, TRANSPORT_ERROR): TERMINATED,
}

DEFAULT_MAX_TRANSACTIONS = 100_000


class BranchKey(NamedTuple):  # made and hashed for every request: a tuple does it in C
    """A request's transaction by top Via branch, sent-by and method (RFC 3261 17.2.3)."""

    branch: str  # lower case, starting with the magic cookie
    sent_by: tuple[str, int | None]
    method: str


@dataclass(frozen=True)
class LegacyKey:
    """A request's transaction by the RFC 2543 fields, for a branch without the cookie."""

    uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq: CSeq
    via: tuple[object, ...]


ServerKey = BranchKey | LegacyKey


def server_key(request: SipRequest) -> ServerKey:
    """The key a request matches its transaction on (RFC 3261 17.2.3); MalformedMessage if none."""
    if not request.headers.get("Via"):
        raise MalformedMessage("request without a Via header")
    via = request.top_via
    branch = via.branch
    if branch and branch[: len(MAGIC_COOKIE)].lower() == MAGIC_COOKIE.lower():
        return BranchKey(branch.lower(), (via.host.lower(), via.port), request.method)
    headers = request.headers
    return LegacyKey(
        uri=request.uri,
        to_tag=request.to_addr.tag,
        from_tag=request.from_addr.tag,
        call_id=headers.get("Call-ID") or "",
        cseq=request.cseq,
        via=(via.protocol.upper(), via.transport, via.host.lower(), via.port,
             frozenset((name.lower(), value) for name, value in via.params)),
    )


class Disposition(Enum):
    """What the shell does with a received request."""

    NEW = "new"  # a new transaction: pass the request to the TU
    ABSORBED = "absorbed"  # a retransmission in Trying: send nothing
    ANSWERED = "answered"  # a retransmission in Proceeding/Completed: send `resend`
    REFUSED = "refused"  # no room for a new transaction: answer 503 statelessly


class ReceiveResult(NamedTuple):
    """The fate of one received request (RFC 3261 17.2.2, 17.2.3)."""

    disposition: Disposition
    key: ServerKey
    resend: bytes = b""  # the last response again, for ANSWERED


class ServerTransaction:
    """One non-INVITE server transaction (RFC 3261 17.2.2)."""

    __slots__ = ("key", "reliable", "started", "state", "last_response", "deadline", "_timers")

    def __init__(self, key: ServerKey, *, reliable: bool, now: float,
                 timers: TimerValues) -> None:
        self.key = key
        self.reliable = reliable
        self.started = now
        self.state = TRYING
        self.last_response: bytes | None = None
        self.deadline: float | None = None  # timer J, set on the final response
        self._timers = timers

    def _step(self, event: str) -> None:
        self.state = step(SERVER_MACHINE, self.state, event, TransactionMisuse,
                          "server transaction")

    def retransmitted(self) -> bytes | None:
        """The request came again: the last response to resend, None in Trying."""
        self._step(REQUEST)
        return self.last_response

    def respond(self, response: SipResponse, now: float) -> bytes | None:
        """The TU's response as bytes to send; None if discarded after the final one."""
        event = PROVISIONAL if response.status < 200 else FINAL
        if (self.state, event) not in SERVER_MACHINE:
            return None
        self._step(event)
        self.last_response = response.serialize()
        if event == FINAL:
            self.deadline = now + self._timers.j(self.reliable)
        return self.last_response

    def on_timer(self, now: float) -> bool:
        """Fire timer J if due; True when the transaction is now Terminated."""
        if self.deadline is not None and self.deadline <= now and self.state == COMPLETED:
            self._step(TIMER_J)
        return self.state == TERMINATED

    def transport_error(self) -> None:
        """Sending a response failed (RFC 3261 17.2.4)."""
        self._step(TRANSPORT_ERROR)


class ServerTransactionLayer:
    """Matches requests to non-INVITE server transactions and expires them (RFC 3261 17.2)."""

    def __init__(self, timers: TimerValues | None = None, *,
                 max_transactions: int = DEFAULT_MAX_TRANSACTIONS) -> None:
        self.timers = timers or TimerValues()
        self.max_transactions = max_transactions
        self._live: dict[ServerKey, ServerTransaction] = {}
        self._deadlines: list[tuple[float, int, ServerTransaction]] = []  # heap of timers J
        self._order = itertools.count()

    def receive(self, request: SipRequest, now: float, *, reliable: bool) -> ReceiveResult:
        """Match a request (17.2.3): NEW for the TU, or a retransmission absorbed or answered."""
        if request.method in ("INVITE", "ACK"):
            raise TransactionMisuse(f"{request.method} is not for the non-INVITE layer")
        key = server_key(request)
        transaction = self._live.get(key)
        if transaction is None:
            if len(self._live) >= self.max_transactions:
                return ReceiveResult(Disposition.REFUSED, key)
            self._live[key] = ServerTransaction(
                key, reliable=reliable, now=now, timers=self.timers)
            return ReceiveResult(Disposition.NEW, key)
        resend = transaction.retransmitted()
        if resend is None:
            return ReceiveResult(Disposition.ABSORBED, key)
        return ReceiveResult(Disposition.ANSWERED, key, resend)

    def respond(self, request_or_key: SipRequest | ServerKey, response: SipResponse,
                now: float) -> bytes | None:
        """The TU answers (17.2.2): bytes to send; None if discarded or no such transaction."""
        key = (server_key(request_or_key) if isinstance(request_or_key, SipRequest)
               else request_or_key)
        transaction = self._live.get(key)
        if transaction is None:
            return None
        wire = transaction.respond(response, now)
        if wire is not None and transaction.deadline is not None and response.status >= 200:
            heapq.heappush(self._deadlines,
                           (transaction.deadline, next(self._order), transaction))
        return wire

    def expire(self, now: float) -> list[ServerKey]:
        """Fire every timer J due by `now`; the keys of the transactions removed."""
        removed: list[ServerKey] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, transaction = heapq.heappop(self._deadlines)
            if self._live.get(transaction.key) is transaction and transaction.on_timer(now):
                del self._live[transaction.key]
                removed.append(transaction.key)
        return removed

    def next_deadline(self) -> float | None:
        """When `expire` has work next; None while no transaction has completed."""
        deadlines = self._deadlines
        while deadlines and self._live.get(deadlines[0][2].key) is not deadlines[0][2]:
            heapq.heappop(deadlines)  # a transaction a transport error already removed
        return deadlines[0][0] if deadlines else None

    def transport_error(self, key: ServerKey) -> bool:
        """A response could not be sent (17.2.4): forget the transaction; False if unknown."""
        transaction = self._live.pop(key, None)
        if transaction is None:
            return False
        transaction.transport_error()
        return True

    def get(self, key: ServerKey) -> ServerTransaction | None:
        return self._live.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)
