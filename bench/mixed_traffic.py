"""Registrar and notifier traffic of many kinds, each answer remembered for the checks.

Phones (bench/register_load.py UAs): several per AoR, each with a Call-ID of its own. Before
each REGISTER a phone picks what it does: register again after a de-registration (a new
binding), de-register (Expires 0, one time in seven), refresh with another lifetime, or
now and then reboot (a new Call-ID for the same Contact). A notifier (`NotifyStream`)
sends reginfo NOTIFYs in the dialog of one of our SUBSCRIBEs, one after the other at a
steady pace, each a full-state document with the next version and a random set of the
remote AoR's contacts; it remembers the last one answered 200.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field

from bench.register_load import HOST, RegisterLoad, Ua
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo
from sip_gateway.reginfo import build_reginfo

LIFETIMES = (120, 300, 900, 3600)
REMOTE_CONTACTS = 4


def phones(users: list[str], per_aor: int, targets: list[tuple[str, int]],
           tag: str) -> list[Ua]:
    """`per_aor` phones (own Call-ID and Contact) on each AoR, spread over `targets`."""
    found = []
    for u, user in enumerate(users):
        for k in range(per_aor):
            n = u * per_aor + k
            found.append(Ua(user, f"{tag}-{n}-{uuid.uuid4().hex[:8]}",
                            f"sip:{user}-{k}@10.{n // 250 % 250}.{n % 250}.{k + 1}:5060",
                            targets[n % len(targets)]))
    return found


def chooser(rng: random.Random):
    """What each phone does next (see the module's docstring)."""
    def choose(ua: Ua) -> None:
        if ua.ack is not None and ua.ack.expires == 0:
            ua.expires = rng.choice(LIFETIMES)  # a new binding
        elif ua.ack is not None and rng.random() < 1 / 7:
            ua.expires = 0
        else:
            ua.expires = rng.choice(LIFETIMES)
            if rng.random() < 0.02:
                ua.callid = f"{ua.callid.split('-reboot')[0]}-reboot{uuid.uuid4().hex[:6]}"
                ua.cseq = 0
    return choose


@dataclass
class NotifyStream:
    """Full-state NOTIFYs of `resource` in one dialog (RFC 6665 4.2.2, RFC 3680 4.1)."""

    load: RegisterLoad  # its socket and client transactions
    target: tuple[str, int]
    call_id: str
    subscriber: str  # our SUBSCRIBE's From, tag included: the NOTIFY's To
    resource: str = "sip:remote@example.com"
    pause: float = 0.2
    rng: random.Random = field(default_factory=lambda: random.Random(3680))
    version: int = -1
    cseq: int = 1000
    acked: tuple[int, frozenset[str]] | None = None  # version, contacts of the last 200
    unanswered_since_ack: bool = False
    statuses: dict[int, int] = field(default_factory=dict)

    async def run(self) -> None:
        while not self.load.stopping.is_set():
            self.version += 1
            self.cseq += 1
            contacts = frozenset(f"sip:remote-{k}@203.0.113.{k + 1}:5060"
                                 for k in range(REMOTE_CONTACTS) if self.rng.random() < 0.6)
            body = self._document(contacts)
            answer = await self.load.exchange(lambda branch: self._notify(branch, body),
                                              self.target)
            status = int(answer[8:11]) if answer else 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.acked, self.unanswered_since_ack = (self.version, contacts), False
            else:
                self.unanswered_since_ack = True
            await asyncio.sleep(self.pause)

    def _document(self, contacts: frozenset[str]) -> bytes:
        infos = tuple(ContactInfo(uri=uri, id=f"r{uri.split('-')[1].split('@')[0]}",
                                  state="active", event="registered",
                                  expires=self.rng.choice(LIFETIMES), callid=f"remote-{uri}",
                                  cseq=self.version + 1)
                      for uri in sorted(contacts))
        registration = RegistrationInfo(self.resource, id="remote",
                                        state="active" if infos else "terminated",
                                        contacts=infos)
        return build_reginfo(ReginfoDocument(self.version, "full", (registration,)))

    def _notify(self, branch: bytes, body: bytes) -> bytes:
        host, port = self.target
        return (f"NOTIFY sip:reginfo@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.load.local_port};branch={branch.decode()};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:remote@example.com>;tag=notifier-1\r\n"
                f"To: {self.subscriber}\r\nCall-ID: {self.call_id}\r\nCSeq: {self.cseq} NOTIFY\r\n"
                f"Contact: <sip:notifier@{HOST}:9>\r\nEvent: reg\r\n"
                f"Subscription-State: active;expires=3600\r\n"
                f"Content-Type: application/reginfo+xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
