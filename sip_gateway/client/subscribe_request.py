"""A reg SUBSCRIBE to send: its plan, its timing, and the request built from it.

`SubscriberDialog` decides what to send (dialog identifiers, CSeq, Expires, Request-URI,
route set) as a `SubscribePlan`, and when (`refresh_lead`, `SUBSCRIBE_BACKOFF`); `build_subscribe`
adds what belongs to the transport (Via, Contact, pre-loaded Route) and makes the
`SipRequest` (RFC 6665 4.1.2, RFC 3680 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from domain.uri import SipUri, parse_uri
from sip_gateway.client.backoff import Backoff
from sip_gateway.errors import MalformedMessage
from sip_gateway.sip import Headers, NameAddr, SipRequest, SipResponse, SubscriptionState
from sip_gateway.sip.values import MAX_FORWARDS, REGINFO, parse_delta_seconds

INITIAL, REFRESH, UNSUBSCRIBE = "initial", "refresh", "unsubscribe"


@dataclass(frozen=True)
class SubscribePlan:
    """One SUBSCRIBE decided by the dialog: initial, in-dialog refresh, or Expires 0."""

    kind: str  # INITIAL, REFRESH or UNSUBSCRIBE
    request_uri: str  # the resource, or in a dialog the notifier's Contact (remote target)
    resource: str  # To
    subscriber: str  # From: our URI (server_address)
    call_id: str
    local_tag: str
    remote_tag: str | None  # the notifier's tag; None outside a dialog
    cseq: int
    expires: int
    route_set: tuple[str, ...] = ()  # Route values of the dialog (RFC 3261 12.2.1.1)

    @property
    def in_dialog(self) -> bool:
        return self.remote_tag is not None


SUBSCRIBE_BACKOFF = Backoff(base=2.0, cap=600.0)  # 2 s doubling to 10 minutes


def refresh_lead(lifetime: float) -> float:
    """How long before expiry to refresh: max(5 s, 10 %), at most half the lifetime."""
    return min(max(5.0, lifetime / 10), lifetime / 2)


def uri_of(value: str) -> str | None:
    """The URI of a Contact or Record-Route value, None when it does not parse."""
    try:
        return str(NameAddr.parse(value).uri)
    except MalformedMessage:
        return None


def route_values(values: Iterable[str]) -> tuple[str, ...]:
    """Record-Route values as Route values `<uri>`, keeping the ones that parse."""
    return tuple(f"<{uri}>" for uri in map(uri_of, values) if uri is not None)


def build_subscribe(
    plan: SubscribePlan,
    *,
    via_host: str,
    via_port: int,
    branch: str,
    contact: str,
    from_uri: str | None = None,
    transport: str = "UDP",
    route: str | None = None,
) -> SipRequest:
    """The SUBSCRIBE for `plan` (RFC 6665 4.1.2, RFC 3680 3): Event reg, reginfo Accept.

    `route` is the outbound proxy, sent as a pre-loaded `Route: <uri;lr>` outside a dialog
    only; in a dialog the route set learnt from Record-Route is used (RFC 3261 12.2.1.1).
    `from_uri` defaults to the plan's subscriber URI, the dialog's local URI.
    """
    headers = Headers()
    headers.add("Via", f"SIP/2.0/{transport.upper()} {_host(via_host)}:{via_port}"
                       f";branch={branch};rport")
    routes = plan.route_set if plan.in_dialog else ((_loose_route(route),) if route else ())
    for value in routes:
        headers.add("Route", value)
    headers.add("Max-Forwards", str(MAX_FORWARDS))
    headers.add("From", f"<{from_uri or plan.subscriber}>;tag={plan.local_tag}")
    remote_tag = "" if plan.remote_tag is None else f";tag={plan.remote_tag}"
    headers.add("To", f"<{plan.resource}>{remote_tag}")
    headers.add("Call-ID", plan.call_id)
    headers.add("CSeq", f"{plan.cseq} SUBSCRIBE")
    headers.add("Contact", contact if contact.lstrip().startswith("<") else f"<{contact}>")
    headers.add("Event", "reg")
    headers.add("Expires", str(plan.expires))
    headers.add("Accept", REGINFO)
    headers.add("Content-Length", "0")
    return SipRequest("SUBSCRIBE", plan.request_uri, headers=headers)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _loose_route(route: str) -> str:
    """`<uri;lr>` for an outbound proxy URI (RFC 3261 8.1.2); a name-addr is kept as given."""
    if route.lstrip().startswith("<"):
        return route
    uri = parse_uri(route)
    if not isinstance(uri, SipUri):
        raise ValueError(f"an outbound proxy is a SIP URI, not {route!r}")
    if uri.param("lr") is None:
        uri = replace(uri, params=(*uri.params, ("lr", None)))
    return f"<{uri}>"


def subscribe_response_fields(response: SipResponse) -> dict:
    """What `SubscriberDialog.on_response` reads from a response to our SUBSCRIBE (RFC
    6665 4.1.2.1-4.1.2.4: the notifier's tag, Contact, Expires, Min-Expires, Retry-After,
    Record-Route); an unreadable header counts as absent."""
    headers = response.headers
    to_tag = None
    try:
        to_tag = NameAddr.parse(headers.get("To") or "", "To").tag
    except MalformedMessage:
        pass
    return {
        "to_tag": to_tag,
        "contact": headers.get("Contact"),
        "expires": _seconds(headers.get("Expires")),
        "min_expires": _seconds(headers.get("Min-Expires")),
        "retry_after": _seconds((headers.get("Retry-After") or "").split(";")[0].split("(")[0]),
        "record_route": headers.get_all("Record-Route"),
    }


DIALOG_HEADERS = ("Call-ID", "From", "To", "Subscription-State", "Contact", "Record-Route")


def notify_dialog_part(request: SipRequest) -> SipRequest:
    """The part of a NOTIFY a SUBSCRIBE dialog reads (`notify_fields`), without its body
    and other headers: what a UDP worker sends to the process holding the dialogs."""
    found = [(name, value) for name in DIALOG_HEADERS
             for value in request.headers.get_all(name)]
    return SipRequest(request.method, request.uri, request.version, Headers(found))


def notify_fields(request: SipRequest) -> dict | None:
    """What `SubscriberDialog.on_notify` reads from a NOTIFY in our dialog (RFC 6665 4.1.3:
    Call-ID, tags, Subscription-State, Contact, Record-Route); None when unreadable."""
    try:
        return {
            "call_id": request.headers.get("Call-ID") or "",
            "from_tag": NameAddr.parse(request.headers.get("From") or "", "From").tag,
            "to_tag": NameAddr.parse(request.headers.get("To") or "", "To").tag,
            "subscription_state": SubscriptionState.parse(
                request.headers.get("Subscription-State") or "active"),
            "contact": request.headers.get("Contact"),
            "record_route": request.headers.get_all("Record-Route"),
        }
    except MalformedMessage:
        return None


def _seconds(text: str | None) -> int | None:
    if not text or not text.strip():
        return None
    try:
        return parse_delta_seconds(text.strip())
    except MalformedMessage:
        return None
