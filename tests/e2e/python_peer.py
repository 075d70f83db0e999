"""A scripted SIP peer on loopback: presence server for PUBLISH, notifier for SUBSCRIBE.

Used where a test needs thousands of exchanges and exact counting (sipp scenarios check
the wire format elsewhere). It answers every PUBLISH 200 with a fresh SIP-ETag and the
requested Expires, every SUBSCRIBE 200 with a To tag, a Contact and the requested
Expires, records everything it receives, and sends NOTIFYs in the dialog on request.
Like any UAS (RFC 3261 17.2), it absorbs retransmissions: a request seen before (same
top Via branch and method) gets the same answer again and is not recorded twice.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from sip_gateway.sip import SipRequest, SipResponse, parse_message

HOST = "127.0.0.1"
NOTIFIER_TAG = "notifier-1"


@dataclass
class Dialog:
    call_id: str
    local_uri: str  # the subscriber's From (with tag) becomes our To
    subscriber: tuple[str, int]
    cseq: int = 0


@dataclass
class PythonPeer:
    sock: socket.socket
    publishes: list[SipRequest] = field(default_factory=list)
    subscribes: list[SipRequest] = field(default_factory=list)
    responses: list[SipResponse] = field(default_factory=list)
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribe_expires: int = 600
    retransmissions: int = 0
    answered: dict[tuple[str, str], bytes] = field(default_factory=dict)

    @classmethod
    def start(cls, port: int) -> PythonPeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, port))
        sock.settimeout(0.2)
        peer = cls(sock)
        peer._etags = itertools.count(1)
        peer._thread = threading.Thread(target=peer._serve, daemon=True)
        peer._thread.start()
        return peer

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def wait_for(self, predicate, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        with self.lock:
            return predicate(self)

    def notify(self, call_id: str, body: bytes, state: str = "active;expires=600") -> None:
        """Send a NOTIFY with `body` in the dialog of `call_id` (RFC 6665 4.2.2)."""
        with self.lock:
            dialog = self.dialogs[call_id]
            dialog.cseq += 1
            cseq = dialog.cseq
        branch = f"z9hG4bKpeer{call_id[:8]}{cseq}"
        head = (f"NOTIFY sip:reginfo@{dialog.subscriber[0]}:{dialog.subscriber[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:notifier@{HOST}>;tag={NOTIFIER_TAG}\r\n"
                f"To: {dialog.local_uri}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} NOTIFY\r\n"
                f"Contact: <sip:notifier@{HOST}:{self.port}>\r\nEvent: reg\r\n"
                f"Subscription-State: {state}\r\nContent-Type: application/reginfo+xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.sock.sendto(head.encode() + body, dialog.subscriber)

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, address = self.sock.recvfrom(65535)
            except OSError:
                continue
            message = parse_message(data)
            with self.lock:
                if isinstance(message, SipRequest) and _key(message) in self.answered:
                    self.retransmissions += 1
                    self.sock.sendto(self.answered[_key(message)], address)
                elif isinstance(message, SipResponse):
                    self.responses.append(message)
                elif message.method == "PUBLISH":
                    self.publishes.append(message)
                    etag = f"etag-{next(self._etags)}"
                    self._answer(message, address, [("SIP-ETag", etag),
                                                    ("Expires", message.headers.get("Expires"))])
                elif message.method == "SUBSCRIBE":
                    self.subscribes.append(message)
                    call_id = message.headers.get("Call-ID")
                    self.dialogs.setdefault(call_id, Dialog(call_id, message.headers.get("From"),
                                                            address))
                    expires = min(int(message.headers.get("Expires")), self.subscribe_expires)
                    self._answer(message, address, [
                        ("Contact", f"<sip:notifier@{HOST}:{self.port}>"),
                        ("Expires", str(expires))], to_tag=NOTIFIER_TAG)

    def _answer(self, request: SipRequest, address, extra, to_tag: str | None = None) -> None:
        headers = request.headers
        to = headers.get("To")
        if to_tag and not re.search(r";\s*tag=", to):
            to += f";tag={to_tag}"
        lines = [f"Via: {via}" for via in headers.get_all("Via")]
        lines += [f"From: {headers.get('From')}", f"To: {to}",
                  f"Call-ID: {headers.get('Call-ID')}", f"CSeq: {headers.get('CSeq')}"]
        lines += [f"{name}: {value}" for name, value in extra]
        text = "SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
        self.answered[_key(request)] = text.encode()
        self.sock.sendto(text.encode(), address)


def _key(request: SipRequest) -> tuple[str, str]:
    """What identifies a server transaction (RFC 3261 17.2.3): top Via branch, method."""
    top = request.headers.get("Via") or ""
    branch = re.search(r";\s*branch=([^;\s,]+)", top)
    return (branch.group(1) if branch else top, request.method)
