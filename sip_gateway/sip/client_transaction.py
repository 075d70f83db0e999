"""Non-INVITE client transactions and the layer that matches responses to them (RFC 3261 17.1).

Theory of operation (17.1.2.2, figure 6). `start` sends the TU's request and enters Trying.
Timer F (64*T1) bounds the whole transaction; on UDP only, timer E retransmits the request,
first after T1, then at doubling intervals capped at T2. A provisional response goes up to
the TU and moves to Proceeding, where timer E keeps retransmitting every T2. A final
response goes up once and moves to Completed: E and F stop, and timer K (T4 on UDP, 0 on
TCP/TLS) absorbs the response's retransmissions until it fires and the transaction is
Terminated. Timer F firing first ends the transaction with a timeout, which the TU treats
as 408 (8.1.3.1); a transport failure ends it at once (17.1.4).

The layer matches a response on its top Via branch and CSeq method (17.1.3); one that
matches nothing, or lacks those headers, is a stray (18.1.2). `new_branch` makes the
branches: the magic cookie and random hex from an injectable source. No clock and no
socket: `now` comes in, bytes and events go out, `next_deadline` says when to `on_timer`.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sip_gateway.errors import MalformedMessage
from sip_gateway.sip.machine import TransactionMisuse, step
from sip_gateway.sip.message import SipMessage, SipRequest, SipResponse
from sip_gateway.sip.timers import (
    COMPLETED,
    MAGIC_COOKIE,
    PROCEEDING,
    TERMINATED,
    TRYING,
    TimerValues,
)
from sip_gateway.sip.values import CSeq, Via

INITIAL = "initial"  # before `start`: the arrow into Trying in figure 6
START, PROVISIONAL, FINAL, TIMER_E, TIMER_F, TIMER_K, TRANSPORT_ERROR = (
    "start", "provisional", "final", "timer_e", "timer_f", "timer_k", "transport_error")

# (state, event) -> next state. Responses in Completed are retransmissions, absorbed.
CLIENT_MACHINE: dict[tuple[str, str], str] = {
    (INITIAL, START): TRYING,
    (TRYING, TIMER_E): TRYING,
    (TRYING, PROVISIONAL): PROCEEDING,
    (TRYING, FINAL): COMPLETED,
    (TRYING, TIMER_F): TERMINATED,
    (TRYING, TRANSPORT_ERROR): TERMINATED,
    (PROCEEDING, TIMER_E): PROCEEDING,
    (PROCEEDING, PROVISIONAL): PROCEEDING,
    (PROCEEDING, FINAL): COMPLETED,
    (PROCEEDING, TIMER_F): TERMINATED,
    (PROCEEDING, TRANSPORT_ERROR): TERMINATED,
    (COMPLETED, PROVISIONAL): COMPLETED,
    (COMPLETED, FINAL): COMPLETED,
    (COMPLETED, TIMER_K): TERMINATED,
}

BRANCH_BYTES = 16


@dataclass(frozen=True)
class ClientKey:
    """A client transaction: top Via branch (lower case) and CSeq method (RFC 3261 17.1.3)."""

    branch: str
    method: str


def client_key(message: SipMessage) -> ClientKey:
    """The key of a request we send or a response we receive; MalformedMessage if none."""
    if not message.headers.get("Via") or not message.headers.get("CSeq"):
        raise MalformedMessage("message without a Via or CSeq header")
    branch = message.top_via.branch  # parsed once per message
    if not branch:
        raise MalformedMessage("top Via without a branch")
    return ClientKey(branch.lower(), message.cseq.method)


def new_branch(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A branch unique in space and time: magic cookie plus random hex (RFC 3261 8.1.1.7)."""
    return MAGIC_COOKIE + random_bytes(BRANCH_BYTES).hex()


@dataclass(frozen=True)
class Retransmit:
    """Timer E fired: send the request's bytes again (17.1.2.2)."""

    key: ClientKey
    wire: bytes


@dataclass(frozen=True)
class TimedOut:
    """Timer F fired before a final response: the TU sees 408 (17.1.2.2, 8.1.3.1)."""

    key: ClientKey


@dataclass(frozen=True)
class TransportFailed:
    """The request could not be sent: the TU sees 503 (17.1.4, 8.1.3.1)."""

    key: ClientKey


@dataclass(frozen=True)
class Terminated:
    """The transaction ended and is forgotten; always the last event of a transaction."""

    key: ClientKey


ClientEvent = Retransmit | TimedOut | TransportFailed | Terminated


class ClientTransaction:
    """One non-INVITE client transaction (RFC 3261 17.1.2)."""

    def __init__(self, request: SipRequest, *, reliable: bool,
                 timers: TimerValues | None = None) -> None:
        if request.method in ("INVITE", "ACK"):
            raise TransactionMisuse(f"{request.method} is not for a non-INVITE transaction")
        try:
            self.key = client_key(request)
        except MalformedMessage as error:
            raise TransactionMisuse(f"request to send has no transaction key: {error}") from None
        if not self.key.branch.startswith(MAGIC_COOKIE.lower()):
            raise TransactionMisuse(f"branch without the magic cookie: {self.key.branch}")
        self.request = request
        self.reliable = reliable
        self.timers = timers or TimerValues()
        self.state = INITIAL
        self.wire = request.serialize()
        self._e_at: float | None = None
        self._e_interval = self.timers.t1
        self._f_at: float | None = None
        self._k_at: float | None = None

    def _step(self, event: str) -> None:
        self.state = step(CLIENT_MACHINE, self.state, event, TransactionMisuse,
                          "client transaction")
        if self.state in (COMPLETED, TERMINATED):
            self._e_at = self._f_at = None
        if self.state == TERMINATED:
            self._k_at = None

    def start(self, now: float) -> bytes:
        """Enter Trying: the request's bytes to send; timers F and, on UDP, E run."""
        self._step(START)
        self._f_at = now + self.timers.f
        if not self.reliable:
            self._e_at = now + self._e_interval
        return self.wire

    def receive_response(self, response: SipResponse, now: float) -> SipResponse | None:
        """The response to pass up to the TU, or None for a retransmission absorbed."""
        if self.state == TERMINATED:
            return None
        absorbed = self.state == COMPLETED
        event = PROVISIONAL if response.status < 200 else FINAL
        self._step(event)
        if absorbed:
            return None
        if event == FINAL:
            self._k_at = now + self.timers.k(self.reliable)
        return response

    def on_timer(self, now: float) -> list[ClientEvent]:
        """Fire the timer due by `now`, if any: F, then K, then E."""
        if self._f_at is not None and self._f_at <= now:
            self._step(TIMER_F)
            return [TimedOut(self.key), Terminated(self.key)]
        if self._k_at is not None and self._k_at <= now:
            self._step(TIMER_K)
            return [Terminated(self.key)]
        if self._e_at is not None and self._e_at <= now:
            self._step(TIMER_E)
            if self.state == PROCEEDING:
                self._e_interval = self.timers.t2
            else:
                self._e_interval = self.timers.e_after(self._e_interval)
            self._e_at = now + self._e_interval
            return [Retransmit(self.key, self.wire)]
        return []

    def transport_error(self) -> list[ClientEvent]:
        """Sending the request failed (17.1.4); nothing to do once a final response came."""
        if (self.state, TRANSPORT_ERROR) not in CLIENT_MACHINE:
            return []
        self._step(TRANSPORT_ERROR)
        return [TransportFailed(self.key), Terminated(self.key)]

    def next_deadline(self) -> float | None:
        """When the next timer fires; None when none runs."""
        times = [t for t in (self._e_at, self._f_at, self._k_at) if t is not None]
        return min(times) if times else None


class ResponseDisposition(Enum):
    """What the shell does with a received response."""

    MATCHED = "matched"  # pass the response to the TU
    ABSORBED = "absorbed"  # a retransmission in Completed: nothing to do
    STRAY = "stray"  # no transaction: a UA core drops it (18.1.2)


@dataclass(frozen=True)
class ResponseResult:
    """The fate of one received response (RFC 3261 17.1.3)."""

    disposition: ResponseDisposition
    key: ClientKey | None
    response: SipResponse


class ClientTransactionLayer:
    """Non-INVITE client transactions keyed by branch and method (RFC 3261 17.1)."""

    def __init__(self, timers: TimerValues | None = None, *,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.timers = timers or TimerValues()
        self._random_bytes = random_bytes
        self._live: dict[ClientKey, ClientTransaction] = {}
        self._deadlines: list[tuple[float, int, ClientTransaction]] = []  # heap, lazily cleaned
        self._order = itertools.count()

    def new_branch(self) -> str:
        """A fresh branch for the top Via of a request (RFC 3261 8.1.1.7)."""
        return new_branch(self._random_bytes)

    def start(self, request: SipRequest, now: float, *, reliable: bool) -> bytes:
        """Create and start a transaction for `request`: the bytes to send."""
        transaction = ClientTransaction(request, reliable=reliable, timers=self.timers)
        if transaction.key in self._live:
            raise TransactionMisuse(f"a transaction with {transaction.key} is still running")
        wire = transaction.start(now)
        self._live[transaction.key] = transaction
        self._schedule(transaction)
        return wire

    def receive_response(self, response: SipResponse, now: float) -> ResponseResult:
        """Match a response (17.1.3) and pass it to its transaction."""
        try:
            key = client_key(response)
        except MalformedMessage:
            return ResponseResult(ResponseDisposition.STRAY, None, response)
        transaction = self._live.get(key)
        if transaction is None:
            return ResponseResult(ResponseDisposition.STRAY, key, response)
        before = transaction.next_deadline()
        passed = transaction.receive_response(response, now)
        if transaction.next_deadline() != before:
            self._schedule(transaction)
        if passed is None:
            return ResponseResult(ResponseDisposition.ABSORBED, key, response)
        return ResponseResult(ResponseDisposition.MATCHED, key, response)

    def on_timer(self, now: float) -> list[ClientEvent]:
        """Fire every timer due by `now`, in deadline order; forget terminated transactions."""
        events: list[ClientEvent] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, transaction = heapq.heappop(self._deadlines)
            if not self._is_current(deadline, transaction):
                continue
            events += transaction.on_timer(now)
            if transaction.state == TERMINATED:
                del self._live[transaction.key]
            else:
                self._schedule(transaction)
        return events

    def transport_error(self, key: ClientKey) -> list[ClientEvent]:
        """Sending the request failed (17.1.4): TransportFailed and Terminated, or nothing."""
        transaction = self._live.get(key)
        if transaction is None:
            return []
        events = transaction.transport_error()
        if transaction.state == TERMINATED:
            del self._live[key]
        return events

    def next_deadline(self) -> float | None:
        """When `on_timer` has work next; None while no timer runs."""
        deadlines = self._deadlines
        while deadlines and not self._is_current(deadlines[0][0], deadlines[0][2]):
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def get(self, key: ClientKey) -> ClientTransaction | None:
        return self._live.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)

    def _schedule(self, transaction: ClientTransaction) -> None:
        deadline = transaction.next_deadline()
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, next(self._order), transaction))

    def _is_current(self, deadline: float, transaction: ClientTransaction) -> bool:
        """The heap entry is still the transaction's next deadline (older ones are skipped)."""
        return (self._live.get(transaction.key) is transaction
                and transaction.next_deadline() == deadline)
