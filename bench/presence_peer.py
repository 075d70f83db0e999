"""A presence server that remembers when each PUBLISH arrived and what its document said.

The scripted peer of the e2e tests (tests/e2e/python_peer.py: answers PUBLISH and
SUBSCRIBE 200, absorbs retransmissions, sends NOTIFYs in a dialog), plus for every PUBLISH
received (retransmissions apart) its arrival time and its reginfo document, parsed by the
product's strict parser: resource, version and contacts with their event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from domain.reginfo import ReginfoDocument
from sip_gateway.reginfo import parse_reginfo
from tests.e2e.python_peer import PythonPeer


@dataclass(frozen=True)
class Published:
    at: float  # Unix seconds
    resource: str  # the Request-URI
    if_match: str | None
    expires: int
    document: ReginfoDocument | None  # None: a refresh or removal without body
    sender: int = 0  # the port in the top Via: which node sent it

    @property
    def version(self) -> int | None:
        return self.document.version if self.document else None

    def contacts_ended(self) -> list[str]:
        """The contacts the document reports `terminated`."""
        if self.document is None:
            return []
        return [c.uri for r in self.document.registrations for c in r.contacts
                if c.state == "terminated"]

    def contacts(self, event: str | None = None) -> list[str]:
        if self.document is None:
            return []
        return [c.uri for r in self.document.registrations for c in r.contacts
                if event is None or c.event == event]


@dataclass
class PresencePeer(PythonPeer):
    """PythonPeer keeping a `Published` record of each PUBLISH (under `lock`)."""

    received: list[Published] = field(default_factory=list)

    def _answer(self, request, address, extra, to_tag=None) -> None:
        if request.method == "PUBLISH":
            body = request.body
            self.received.append(Published(
                time.time(), str(request.uri), request.headers.get("SIP-If-Match"),
                int(request.headers.get("Expires") or 0), parse_reginfo(body) if body else None,
                int(request.headers.get("Via").split()[1].split(";")[0].rsplit(":", 1)[1])))
        super()._answer(request, address, extra, to_tag)
