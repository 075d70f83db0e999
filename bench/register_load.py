"""REGISTER load from simulated UAs over UDP, keeping count of what each one was told.

Each UA owns one Call-ID and one Contact on an AoR and loops: REGISTER with the next CSeq,
retransmitted like an RFC 3261 non-INVITE client (timer E from 500 ms doubling to 4 s,
given up after timer F, 32 s) until a final response, then a pause. A 200 is an
acknowledgement: the UA remembers the CSeq, when it first sent it and when the 200 came,
so the store can be checked afterwards for every acknowledged binding. Other final
responses are counted by status; a 503 makes the UA wait its Retry-After.
All UAs share one socket on 127.0.0.1; responses find their transaction by Via branch.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
T1, T2, TIMER_F = 0.5, 4.0, 32.0
_BRANCH = re.compile(rb"branch=([^;,\s]+)")
_RETRY_AFTER = re.compile(rb"\r\nRetry-After:\s*(\d+)", re.IGNORECASE)


@dataclass
class Ack:
    cseq: int
    first_sent: float  # wall clock
    answered: float
    expires: int = 3600  # what the REGISTER asked for (0: a de-registration)
    callid: str = ""


@dataclass
class Ua:
    aor_user: str
    callid: str
    contact: str
    target: tuple[str, int]
    expires: int = 3600
    cseq: int = 0
    ack: Ack | None = None
    unanswered_since_ack: bool = False  # a later REGISTER got no final answer: it may apply


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    timeouts: int = 0
    sent: int = 0  # transactions, not datagrams
    retransmissions: int = 0
    latencies: list[float] = field(default_factory=list)

    def fives(self) -> dict[int, int]:
        return {code: n for code, n in sorted(self.statuses.items()) if code >= 500}


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        match = _BRANCH.search(data)
        if not data.startswith(b"SIP/2.0 ") or match is None:
            return
        status = int(data[8:11])
        future = self.waiting.get(match.group(1))
        if future is not None and not future.done() and status >= 200:
            future.set_result(data)


class RegisterLoad:
    """Runs UAs until told to stop; `tally` and each UA's `ack` tell what happened."""

    def __init__(self, uas: list[Ua], pause: float = 0.0,
                 choose: Callable[[Ua], None] | None = None,
                 answered: Callable[[Ua, float, bytes], None] | None = None):
        """`choose(ua)`, if given, sets the UA's next request (expires, Call-ID, target);
        `answered(ua, first_sent, response)` sees every 200."""
        self.uas, self.pause, self.choose, self.answered = uas, pause, choose, answered
        self.tally = Tally()
        self.stopping = asyncio.Event()
        self._endpoint = _Endpoint()

    async def run(self, registers_each: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self._endpoint,
                                                           local_addr=(HOST, 0))
        self.local_port = transport.get_extra_info("sockname")[1]
        try:
            await asyncio.gather(*(self._ua(ua, registers_each) for ua in self.uas))
        finally:
            transport.close()

    def stop(self) -> None:
        self.stopping.set()

    async def _ua(self, ua: Ua, count: int | None) -> None:
        done = 0
        while not self.stopping.is_set() and (count is None or done < count):
            if self.choose is not None:
                self.choose(ua)
            ua.cseq += 1
            self.tally.sent += 1
            first_sent = time.time()
            answer = await self.exchange(lambda branch: self._register(ua, branch), ua.target)
            done += 1
            if answer is None:
                self.tally.timeouts += 1
                ua.unanswered_since_ack = True
                continue
            status = int(answer[8:11])
            self.tally.statuses[status] += 1
            if status == 200:
                ua.ack = Ack(ua.cseq, first_sent, time.time(), ua.expires, ua.callid)
                ua.unanswered_since_ack = False
                self.tally.latencies.append(time.time() - first_sent)
                if self.answered is not None:
                    self.answered(ua, first_sent, answer)
            elif status == 503:
                found = _RETRY_AFTER.search(answer)
                await self._sleep(int(found.group(1)) if found else 1)
            if self.pause:
                await self._sleep(self.pause)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def exchange(self, build: Callable[[bytes], bytes],
                       target: tuple[str, int]) -> bytes | None:
        """One client transaction: `build(branch)` sent and retransmitted to `target`
        until a final answer (returned) or timer F (None)."""
        branch = f"z9hG4bK{uuid.uuid4().hex[:16]}".encode()
        message = build(branch)
        future = asyncio.get_running_loop().create_future()
        self._endpoint.waiting[branch] = future
        started, interval = time.monotonic(), T1
        try:
            while True:
                self._endpoint.transport.sendto(message, target)
                left = TIMER_F - (time.monotonic() - started)
                if left <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(future), min(interval, left))
                except asyncio.TimeoutError:
                    self.tally.retransmissions += 1
                    interval = min(interval * 2, T2)
        finally:
            self._endpoint.waiting.pop(branch, None)

    def _register(self, ua: Ua, branch: bytes) -> bytes:
        host, port = ua.target
        return (f"REGISTER sip:example.com SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.local_port};branch={branch.decode()};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{ua.aor_user}@example.com>;tag={ua.callid[:8]}\r\n"
                f"To: <sip:{ua.aor_user}@example.com>\r\nCall-ID: {ua.callid}\r\n"
                f"CSeq: {ua.cseq} REGISTER\r\nContact: <{ua.contact}>;expires={ua.expires}\r\n"
                f"User-Agent: reliability-probe\r\nContent-Length: 0\r\n\r\n").encode()


def check_acknowledged(uas: list[Ua], rows: list[dict]) -> list[str]:
    """Every acknowledged REGISTER must be in the view: its binding with that CSeq (or a
    later one of the same UA) and an expiry its commit could have given it; after an
    acknowledged de-registration, no binding unless a later unanswered REGISTER made it."""
    found = {(r["aor"], r["contact"]): r for r in rows}
    problems = []
    for ua in uas:
        if ua.ack is None:
            continue
        row = found.get((f"sip:{ua.aor_user}@example.com", ua.contact))
        if ua.ack.expires == 0:
            if row is not None and not (ua.unanswered_since_ack and row["callid"] == ua.callid
                                        and row["cseq"] > ua.ack.cseq):
                problems.append(f"{ua.callid}: de-registered by CSeq {ua.ack.cseq}, stored "
                                f"{row['callid']} CSeq {row['cseq']}")
            continue
        if row is None:
            problems.append(f"{ua.callid}: acknowledged CSeq {ua.ack.cseq} but no binding")
        elif row["callid"] != ua.ack.callid and not ua.unanswered_since_ack \
                or row["callid"] == ua.ack.callid and row["cseq"] < ua.ack.cseq:
            problems.append(f"{ua.callid}: acknowledged CSeq {ua.ack.cseq}, stored "
                            f"{row['callid']} CSeq {row['cseq']}")
        elif row["callid"] == ua.ack.callid and row["cseq"] == ua.ack.cseq and not (
                ua.ack.first_sent + ua.ack.expires - 2 <= row["expires"]
                <= ua.ack.answered + ua.ack.expires + 2):
            problems.append(f"{ua.callid}: CSeq {ua.ack.cseq} stored with expiry "
                            f"{row['expires']}, sent {ua.ack.first_sent:.0f}, "
                            f"answered {ua.ack.answered:.0f}")
    return problems


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")
