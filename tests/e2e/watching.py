"""Watchers for the notifier's e2e tests: sipp scenarios written per test, a REGISTER sender,
and readers of the NOTIFYs a watcher received.

`watcher_scenario` writes a sipp UAC scenario from steps: ("subscribe", expires) sends the
first SUBSCRIBE (Event reg, Accept reginfo) and takes our To tag and Contact from the 200;
("notify", code) waits for a NOTIFY and answers it with `code`; ("refresh", expires) sends
a SUBSCRIBE in the dialog (to our Contact, with our To tag) and waits for its 200. sipp
runs it once (-m 1) against the gateway's port; every check is made on its trace.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

from lxml import etree

from sip_gateway.sip import SipRequest, SubscriptionState, parse_message
from tests.e2e.conftest import HOST
from tests.e2e.sipp_peer import TracedMessage

NS = {"r": "urn:ietf:params:xml:ns:reginfo"}
REASONS = {200: "OK", 481: "Call/Transaction Does Not Exist", 408: "Request Timeout"}

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="pua-reginfo e2e: a reg watcher">
"""
_SUBSCRIBE = """  <send>
    <![CDATA[
      SUBSCRIBE {uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <[$watcher]>;tag=[pid]w[call_number]
      To: <[$aor]>{to_tag}
      Call-ID: [call_id]
      CSeq: {cseq} SUBSCRIBE
      Contact: <sip:watcher@[local_ip]:[local_port]>
      Event: reg
      Accept: application/reginfo+xml
      Expires: {expires}
      Content-Length: 0

    ]]>
  </send>
  <recv response="200">{dialog}</recv>
"""
_DIALOG = """
    <action>
      <ereg regexp="tag=([^;> ]+)" search_in="hdr" header="To:" assign_to="_,totag"/>
      <ereg regexp="&lt;([^&gt;]+)&gt;" search_in="hdr" header="Contact:" assign_to="_,target"/>
    </action>
  """
_NOTIFY = """  <recv request="NOTIFY"/>
  <send>
    <![CDATA[
      SIP/2.0 {code} {reason}
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def watcher_scenario(path: Path, aor: str, watcher: str, steps: list[tuple]) -> Path:
    parts = [_HEAD,
             f'  <nop><action><assignstr assign_to="aor" value="{aor}"/>'
             f'<assignstr assign_to="watcher" value="{watcher}"/></action></nop>\n']
    cseq = 0
    refreshing = any(step[0] == "refresh" for step in steps)
    for step in steps:
        kind = step[0]
        if kind in ("subscribe", "refresh"):
            cseq += 1
            first = kind == "subscribe"
            parts.append(_SUBSCRIBE.format(uri="[$aor]" if first else "[$target]",
                                           to_tag="" if first else ";tag=[$totag]",
                                           cseq=cseq, expires=step[1],
                                           dialog=_DIALOG if first and refreshing else ""))
        elif kind == "notify":
            code = step[1] if len(step) > 1 else 200
            parts.append(_NOTIFY.format(code=code, reason=REASONS[code]))
        else:
            raise ValueError(f"unknown step {kind!r}")
    parts.append("</scenario>\n")
    path.write_text("".join(parts))
    return path


def register(port: int, aor_user: str, contact: str, expires: int, cseq: int,
             call_id: str = "e2e-phone", timeout: float = 3.0) -> str:
    """One REGISTER from a fresh UDP socket; the status line of the answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        message = (f"REGISTER sip:example.com SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{aor_user}@example.com>;tag=ph\r\n"
                   f"To: <sip:{aor_user}@example.com>\r\nCall-ID: {call_id}\r\n"
                   f"CSeq: {cseq} REGISTER\r\nContact: <{contact}>;expires={expires}\r\n"
                   f"Content-Length: 0\r\n\r\n").encode()
        sock.sendto(message, (HOST, port))
        return sock.recv(65535).decode().split("\r\n", 1)[0]


class Notified:
    """One NOTIFY as the watcher received it."""

    def __init__(self, message: TracedMessage | SipRequest) -> None:
        self.message = message
        headers = message.headers
        self.state = SubscriptionState.parse(headers.get("Subscription-State") or "")
        self.cseq = int((headers.get("CSeq") or "0").split()[0])
        self.via = headers.get("Via") or ""
        body = message.body
        self.root = etree.fromstring(body) if body else None

    @property
    def version(self) -> int:
        return int(self.root.get("version"))

    @property
    def full(self) -> bool:
        return self.root.get("state") == "full"

    @property
    def registration_state(self) -> str:
        return self.root.find("r:registration", NS).get("state")

    def contacts(self) -> dict[str, dict]:
        """contact URI -> its attributes (state, event, expires, retry-after, ...)."""
        found = {}
        for contact in self.root.iterfind("r:registration/r:contact", NS):
            found[contact.findtext("r:uri", namespaces=NS)] = dict(contact.attrib)
        return found

    def __repr__(self) -> str:
        if self.root is None:
            return f"<NOTIFY cseq={self.cseq} {self.state} without a body>"
        return (f"<NOTIFY cseq={self.cseq} {self.state} version={self.version} "
                f"{self.root.get('state')} {self.contacts()}>")


class UdpWatcher:
    """A watcher on a UDP socket of its own that answers each NOTIFY 200 where its Via
    says (RFC 3261 18.2.2), whichever node sent it (sipp answers its configured peer)."""

    def __init__(self, aor: str, watcher: str = "sip:vm@example.com") -> None:
        self.aor, self.watcher = aor, watcher
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[Notified] = []
        self.responses: list = []

    def subscribe(self, port: int, expires: int = 600) -> None:
        self.sock.sendto((
            f"SUBSCRIBE {self.aor} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <{self.watcher}>;tag=uw{self.port}\r\n"
            f"To: <{self.aor}>\r\nCall-ID: udp-watcher-{self.port}\r\nCSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:vm@{HOST}:{self.port}>\r\nEvent: reg\r\nExpires: {expires}\r\n"
            "Content-Length: 0\r\n\r\n").encode(), (HOST, port))

    def wait(self, count: int, timeout: float, context=lambda: "") -> list[Notified]:
        """The first `count` NOTIFYs (each CSeq once), answering every one."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} NOTIFYs: "
                                     f"{self.received}\n{context()}")
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = parse_message(data)
            if not isinstance(message, SipRequest):
                self.responses.append(message)
                continue
            head = "\r\n".join(f"{name}: {message.headers.get(name)}"
                                for name in ("Via", "From", "To", "Call-ID", "CSeq"))
            self.sock.sendto(f"SIP/2.0 200 OK\r\n{head}\r\nContent-Length: 0\r\n\r\n"
                             .encode(), source)
            notified = Notified(message)
            if all(n.cseq != notified.cseq for n in self.received):
                self.received.append(notified)
        return self.received[:count]

    def close(self) -> None:
        self.sock.close()


def notifies(peer) -> list[Notified]:
    """The NOTIFYs received, a retransmission (same Call-ID and CSeq) counted once."""
    seen, found = set(), []
    for message in peer.received("NOTIFY"):
        key = (message.call_id, message.cseq)
        if key not in seen:
            seen.add(key)
            found.append(Notified(message))
    return found
