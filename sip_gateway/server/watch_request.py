"""A reg SUBSCRIBE as the notifier reads it (RFC 6665 4.2.1, RFC 3680 3 and 4).

`read_subscribe` checks what the notifier needs before it can accept a subscription and
says which SIP error refuses it otherwise: `Event: reg` (489 with Allow-Events), an
Accept that admits `application/reginfo+xml` (406; no Accept means reginfo, RFC 3680 3),
the watcher's From tag and one Contact URI, the dialog's remote target (400), and the
lifetime (RFC 6665 4.2.1.1): no Expires takes `default_expires` (RFC 3680 suggests 3761
s), 0 is a fetch or an unsubscribe, a lifetime below `min_expires` is refused 423 with
Min-Expires, one above `max_expires` is shortened to it. The resource watched is the
Request-URI of a new subscription (RFC 3680 3: the AoR). The To tag, when there is one,
names the dialog of a refresh, whose Request-URI is our Contact: its resource is the To
URI, the AoR the dialog was made for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip_gateway.errors import BadEvent, IntervalTooBrief, MalformedMessage, NotAcceptable
from sip_gateway.sip import NameAddr, SipRequest
from sip_gateway.sip.values import REGINFO, Event, parse_delta_seconds

DEFAULT_EXPIRES = 3761  # RFC 3680 3: the reg package's suggested default, in seconds
MAX_ACCEPT_RANGES = 32  # media ranges read from Accept headers, at most


@dataclass(frozen=True)
class WatchPolicy:
    default_expires: int = DEFAULT_EXPIRES
    min_expires: int = 60
    max_expires: int = 86400


@dataclass(frozen=True)
class WatchRequest:
    """What a SUBSCRIBE asks of the notifier."""

    resource: str  # the AoR watched (Request-URI)
    watcher: str  # the From URI
    call_id: str
    remote_tag: str  # the watcher's From tag
    local_tag: str | None  # our To tag: the dialog a refresh belongs to, None when new
    remote_target: str  # the Contact URI: where NOTIFYs go
    route_set: tuple[str, ...]  # Record-Route values, in the order received
    expires: int  # granted, in seconds; 0: fetch or unsubscribe
    cseq: int

    @property
    def in_dialog(self) -> bool:
        return self.local_tag is not None


def read_subscribe(request: SipRequest, policy: WatchPolicy) -> WatchRequest:
    """The subscription `request` asks for; a PeerError says how to refuse it."""
    _check_event(request.headers.get("Event"))
    _check_accept(request.headers.get_all("Accept"))
    expires = granted_expires(request.headers.get("Expires"), policy)
    from_addr, to_addr = request.from_addr, request.to_addr
    if not from_addr.tag:
        raise MalformedMessage("SUBSCRIBE without a From tag")
    contacts = request.headers.get_all("Contact")
    if len(contacts) != 1:
        raise MalformedMessage(f"SUBSCRIBE needs exactly one Contact (has {len(contacts)})")
    remote_target = str(NameAddr.parse(contacts[0], "Contact").uri)
    return WatchRequest(
        resource=str(to_addr.uri) if to_addr.tag else request.uri, watcher=str(from_addr.uri),
        call_id=request.headers.get("Call-ID") or "", remote_tag=from_addr.tag,
        local_tag=to_addr.tag, remote_target=remote_target,
        route_set=tuple(request.headers.get_all("Record-Route")), expires=expires,
        cseq=request.cseq.number)


def granted_expires(text: str | None, policy: WatchPolicy) -> int:
    """The lifetime granted for an Expires header value (None: none sent)."""
    if text is None or not text.strip():
        return policy.default_expires
    asked = parse_delta_seconds(text.strip())
    if asked == 0:
        return 0
    if asked < policy.min_expires:
        raise IntervalTooBrief(policy.min_expires)
    return min(asked, policy.max_expires)


def _check_event(text: str | None) -> None:
    if not text:
        raise BadEvent("SUBSCRIBE without an Event header")
    event = Event.parse(text)
    if not event.is_package("reg"):
        raise BadEvent(f"Event {event.package!r} is not the reg package")


def _check_accept(values: list[str]) -> None:
    """No Accept: reginfo (RFC 3680 3). Else one range must admit reginfo with q > 0."""
    if not values:
        return
    wanted_type, wanted_subtype = REGINFO.split("/")
    for item in values[:MAX_ACCEPT_RANGES]:
        media, _, params = item.strip().partition(";")
        kind, _, subtype = media.strip().lower().partition("/")
        if kind not in ("*", wanted_type) or subtype not in ("*", wanted_subtype):
            continue
        if kind == "*" and subtype != "*":
            continue
        if _quality(params) > 0:
            return
    raise NotAcceptable(f"Accept admits no {REGINFO}")


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                raise MalformedMessage(f"bad q value in Accept: {value.strip()!r}") from None
    return 1.0
