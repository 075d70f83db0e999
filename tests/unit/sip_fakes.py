"""Fakes shared by the unit tests of the outbound side: a clock, a scripted Outbound port
and scripted answers built as real parsed SIP responses."""

from __future__ import annotations

import inspect

from sip_gateway.sip import NameAddr, SipRequest, SipResponse, parse_message

T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(status: int, reason: str = "OK", *, to_tag: str | None = "esc-1",
           contact: str | None = None, **headers: str):
    """A scripted answer: the response to the request sent, with extra headers
    (`SIP_ETag=...` becomes `SIP-ETag: ...`)."""

    def respond(request: SipRequest) -> SipResponse:
        lines = [f"SIP/2.0 {status} {reason}"]
        for name in ("Via", "From", "Call-ID", "CSeq"):
            lines.append(f"{name}: {request.headers.get(name)}")
        to = request.headers.get("To")
        if to_tag and NameAddr.parse(to).tag is None:
            to += f";tag={to_tag}"
        lines.append(f"To: {to}")
        if contact:
            lines.append(f"Contact: {contact}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        lines.append("Content-Length: 0")
        response = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert isinstance(response, SipResponse)
        return response

    return respond


class FakeOutbound:
    """The Outbound port: requests recorded, answers taken from a script in order
    (None: a timeout; an answer may be async, to let a NOTIFY in before it)."""

    local = ("127.0.0.1", 5070)

    def __init__(self, *script, branch_prefix: str = "z9hG4bK-fake") -> None:
        self.script = list(script)
        self.sent: list[tuple[SipRequest, tuple[str, int]]] = []
        self.branches = 0
        self.branch_prefix = branch_prefix

    def new_branch(self) -> str:
        self.branches += 1
        return f"{self.branch_prefix}-{self.branches}"

    def sent_by(self, hop) -> tuple[str, int]:
        return self.local

    connections: frozenset = frozenset()  # TCP peers with an open connection

    def connected(self, address) -> bool:
        return address in self.connections

    def then(self, *script) -> None:
        self.script += script

    async def request(self, request: SipRequest, destination):
        self.sent.append((request, destination))
        assert self.script, f"no answer scripted for {request.method} #{len(self.sent)}"
        respond = self.script.pop(0)
        if respond is None:
            return None
        response = respond(request)
        return await response if inspect.isawaitable(response) else response

    @property
    def requests(self) -> list[SipRequest]:
        return [request for request, _ in self.sent]
