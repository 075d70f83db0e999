"""A NOTIFY to send to one watcher, in its subscription dialog (RFC 6665 4.2.2, RFC 3680 5).

The notifier is the dialog's UAS: our From is the watched AoR with our tag, the To is the
watcher with its tag, the Request-URI is the watcher's Contact (the remote target), and
the Record-Route set of its SUBSCRIBE becomes the Route set, in the order received
(RFC 3261 12.1.1, loose routing). The request goes to the first Route's URI, or without
routes to the remote target (`notify_hop_uri`). Every NOTIFY carries `Event: reg`,
`Subscription-State` (active with the seconds left, or terminated with a reason) and,
with a document, `Content-Type: application/reginfo+xml`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip_gateway.client.subscribe_request import uri_of
from sip_gateway.sip import Headers, SipRequest, SubscriptionState
from sip_gateway.sip.values import MAX_FORWARDS, REGINFO


@dataclass(frozen=True)
class NotifyDialog:
    """The notifier's side of a watcher's dialog, as the NOTIFY needs it."""

    resource: str  # the AoR watched: our URI in the dialog
    watcher: str  # the watcher's URI
    call_id: str
    local_tag: str
    remote_tag: str
    remote_target: str
    route_set: tuple[str, ...]


def notify_hop_uri(dialog: NotifyDialog) -> str:
    """The URI the NOTIFY is sent to: the first route's, else the remote target."""
    for value in dialog.route_set:
        uri = uri_of(value)
        if uri is not None:
            return uri
    return dialog.remote_target


def build_notify(dialog: NotifyDialog, cseq: int, state: SubscriptionState,
                 body: bytes | None, *, via_host: str, via_port: int, branch: str,
                 contact: str, transport: str = "UDP") -> SipRequest:
    """The NOTIFY of `dialog` with CSeq `cseq`, `state` and `body` (None: no document)."""
    headers = Headers()
    host = f"[{via_host}]" if ":" in via_host and not via_host.startswith("[") else via_host
    headers.add("Via", f"SIP/2.0/{transport.upper()} {host}:{via_port};branch={branch};rport")
    for value in dialog.route_set:
        headers.add("Route", value)
    headers.add("Max-Forwards", str(MAX_FORWARDS))
    headers.add("From", f"<{dialog.resource}>;tag={dialog.local_tag}")
    headers.add("To", f"<{dialog.watcher}>;tag={dialog.remote_tag}")
    headers.add("Call-ID", dialog.call_id)
    headers.add("CSeq", f"{cseq} NOTIFY")
    headers.add("Contact", contact if contact.lstrip().startswith("<") else f"<{contact}>")
    headers.add("Event", "reg")
    headers.add("Subscription-State", str(state))
    if body is not None:
        headers.add("Content-Type", REGINFO)
    headers.add("Content-Length", str(len(body or b"")))
    return SipRequest("NOTIFY", dialog.remote_target, headers=headers, body=body or b"")
