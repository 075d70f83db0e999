"""Sending one watcher its NOTIFY, and what the answer means (RFC 6665 4.2.2).

A NOTIFY is a client transaction of its own toward the dialog's first route or remote
target (sip_gateway/client/notify_request.py), over the transport the watcher's URI names,
else the one its SUBSCRIBE came on. A SUBSCRIBE that came over TCP names its connection
(`flow`): while that connection is open the NOTIFY goes back on it, as a phone behind NAT
can be reached only there; once it is gone, to the target as above. A 2xx delivers it.
Anything else fails it: a timeout or a transport error (the watcher is unreachable: RFC
6665 says the notifier SHOULD remove the subscription) and every final error response (it
MUST; a 481 or 408 says the dialog is gone). The caller then ends the watcher's
subscription without a final NOTIFY.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sip_gateway.client.notify_request import NotifyDialog, build_notify, notify_hop_uri
from sip_gateway.client.outbound import Hop, next_hop
from sip_gateway.sip import SipRequest, SipResponse, SubscriptionState

log = logging.getLogger("pua_reginfo.notifier")


class NotifyTransport(Protocol):
    """The outbound client transactions, as the notifier uses them."""

    def new_branch(self) -> str: ...
    def sent_by(self, hop: Hop) -> tuple[str, int]: ...
    def connected(self, address: tuple[str, int]) -> bool: ...
    async def request(self, request: SipRequest, hop: Hop) -> SipResponse | None: ...


@dataclass(frozen=True)
class Delivery:
    """What became of one NOTIFY: delivered, or why not (the subscription then ends)."""

    delivered: bool
    reason: str = ""


class WatcherNotifier:
    def __init__(self, outbound: NotifyTransport, contact_user: str = "reginfo") -> None:
        self.outbound, self.contact_user = outbound, contact_user

    async def send(self, dialog: NotifyDialog, transport: str, cseq: int,
                   state: SubscriptionState, body: bytes | None,
                   flow: str | None = None) -> Delivery:
        hop = self._flow(flow) if transport == "tcp" and flow else None
        try:
            hop = hop or notify_hop(dialog, transport)
        except ValueError as error:
            return Delivery(False, f"no route to the watcher: {error}")
        try:
            host, port = self.outbound.sent_by(hop)
        except ValueError as error:
            return Delivery(False, str(error))
        where = f"[{host}]" if ":" in host else host
        request = build_notify(dialog, cseq, state, body, via_host=host, via_port=port,
                               branch=self.outbound.new_branch(),
                               contact=f"sip:{self.contact_user}@{where}:{port}",
                               transport=hop.transport)
        response = await self.outbound.request(request, hop)
        if response is None:
            return Delivery(False, "no answer (timeout or transport error)")
        if 200 <= response.status < 300:
            return Delivery(True)
        return Delivery(False, f"{response.status} {response.reason}")


    def _flow(self, flow: str) -> Hop | None:
        """The watcher's own connection, while it is open."""
        host, _, port = flow.rpartition(":")
        address = (host.strip("[]"), int(port))
        return Hop(address, "tcp") if self.outbound.connected(address) else None


def flow_of(address: tuple[str, int]) -> str:
    """`host:port` of a connection's peer, IPv6 in brackets."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def notify_hop(dialog: NotifyDialog, transport: str) -> Hop:
    """Where the NOTIFY goes: the URI's own transport if it names one, else `transport`."""
    uri = notify_hop_uri(dialog)
    if "transport=" not in uri.lower():
        uri += f";transport={transport}"
    return next_hop(uri)
