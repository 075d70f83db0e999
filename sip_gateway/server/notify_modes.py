"""The two ways a reg NOTIFY is taken, each one object: how it is read, how it is applied.

`rfc` (RFC 3680 5.5, RFC 6665), a subscriber's rules. Reading: `Event: reg` is required
(else 489, RFC 6665 8.2.1) and, with a body, `Content-Type: application/reginfo+xml`
(else 415, RFC 3680 4.5); the body is parsed strictly (400); `Subscription-State:
terminated` ends the subscription once its final document is applied (RFC 6665 4.1.3).
Applying: documents are ordered by version per subscription (the Subscription aggregate,
kept under the dialog id), full state replaces what the subscription told us, partial
state merges; a NOTIFY outside every subscription of ours is refused (481) unless
unsolicited NOTIFYs are accepted.

`kamailio`: what Kamailio 5.6 `reginfo_handle_notify` does. No header is looked at, the
body is parsed leniently, versions and subscriptions are ignored, any NOTIFY is applied.

The mode is chosen once (settings, `handle-notify --mode`) with `notify_mode`; the NOTIFY
server, `handle-notify` and the service layer only call its methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.aor import AorIdentity
from domain.address_of_record import AddressOfRecord
from domain.notify_kamailio import apply_kamailio
from domain.notify_rfc import NotifyResult, apply_rfc
from domain.reginfo import ReginfoDocument
from domain.subscription import Subscription, dialog_id
from sip_gateway.errors import BadEvent, MalformedMessage, UnsupportedMediaType
from sip_gateway.reginfo import parse_reginfo, parse_reginfo_lenient
from sip_gateway.sip import (
    ContentType,
    CSeq,
    Event,
    NameAddr,
    SipRequest,
    SubscriptionState,
    parse_message,
)

MODES = ("rfc", "kamailio")
_REQUEST_LINE = re.compile(rb"^[A-Za-z]+ \S+ SIP/2\.0\r?\n")


@dataclass(frozen=True)
class NotifyIntake:
    """What a NOTIFY brings: its document (None without body) and its dialog's fate."""

    document: ReginfoDocument | None
    dialog_id: str | None = None
    ended_reason: str | None = None  # Subscription-State: terminated;reason=...
    cseq: int | None = None  # the NOTIFY's CSeq number (orders the dialog's NOTIFYs)


@dataclass(frozen=True)
class Applying:
    """Everything a mode needs to apply one document inside a unit of work."""

    subscription_id: str
    subscription: Callable[[], Subscription]  # loaded, or started, on demand
    identify: Callable[[str], AorIdentity]
    load: Callable[[AorIdentity], AddressOfRecord]
    node: str
    now: float
    default_expires: int
    cseq: int | None = None
    ended_reason: str | None = None


class NotifyMode(Protocol):
    name: str

    @property
    def requires_subscription(self) -> bool:
        """Whether a NOTIFY outside our subscriptions is refused (481)."""

    def read(self, request: SipRequest) -> NotifyIntake:
        """Check a NOTIFY's headers and parse its body; PeerError with its status."""

    def read_body(self, body: bytes) -> ReginfoDocument | None:
        """Parse a bare reginfo body (None when empty); MalformedReginfo when unusable."""

    def apply(self, document: ReginfoDocument | None, applying: Applying) -> NotifyResult:
        """Decide the document's changes on the loaded aggregates (nothing is saved)."""


@dataclass(frozen=True)
class RfcMode:
    """RFC 3680 section 5.5 and RFC 6665, as a subscriber should."""

    accept_unsolicited: bool = False
    name = "rfc"

    @property
    def requires_subscription(self) -> bool:
        return not self.accept_unsolicited

    def read(self, request: SipRequest) -> NotifyIntake:
        _check_headers(request)
        ended = None
        state_text = request.headers.get("Subscription-State")
        if state_text:
            state = SubscriptionState.parse(state_text)
            if state.state == "terminated":
                ended = state.reason or "terminated"
        return NotifyIntake(self.read_body(request.body), notify_dialog_id(request), ended,
                            _cseq(request))

    def read_body(self, body: bytes) -> ReginfoDocument | None:
        return parse_reginfo(body) if body.strip() else None

    def apply(self, document: ReginfoDocument | None, applying: Applying) -> NotifyResult:
        subscription = applying.subscription()
        result = NotifyResult(1)
        if document is not None:
            result = apply_rfc(document, subscription, identify=applying.identify,
                               load=applying.load, node=applying.node, now=applying.now,
                               default_expires=applying.default_expires, cseq=applying.cseq)
        if applying.ended_reason is not None:
            subscription.end(applying.ended_reason, applying.node, applying.now)
        return result


@dataclass(frozen=True)
class KamailioMode:
    """The observable results of Kamailio 5.6.3 reginfo_handle_notify."""

    name = "kamailio"
    requires_subscription = False

    def read(self, request: SipRequest) -> NotifyIntake:
        return NotifyIntake(self.read_body(request.body), notify_dialog_id(request), None,
                            _cseq(request))

    def read_body(self, body: bytes) -> ReginfoDocument | None:
        return parse_reginfo_lenient(body) if body.strip() else None

    def apply(self, document: ReginfoDocument | None, applying: Applying) -> NotifyResult:
        if document is None:
            return NotifyResult(1)
        return apply_kamailio(document, identify=applying.identify, load=applying.load,
                              node=applying.node, now=applying.now,
                              subscription=applying.subscription_id)


def notify_mode(name: str, *, accept_unsolicited: bool = False) -> NotifyMode:
    """The mode called `name` ("rfc" or "kamailio")."""
    if name == "rfc":
        return RfcMode(accept_unsolicited)
    if name == "kamailio":
        return KamailioMode()
    raise ValueError(f"unknown NOTIFY mode {name!r} (rfc or kamailio)")


def read_notify(data: bytes, mode: NotifyMode) -> NotifyIntake:
    """A bare reginfo body or a whole SIP NOTIFY (`handle-notify`), read by `mode`."""
    if not _REQUEST_LINE.match(data.lstrip(b"\r\n")):
        return NotifyIntake(mode.read_body(data))
    message = parse_message(data.lstrip(b"\r\n"))
    if not isinstance(message, SipRequest) or message.method != "NOTIFY":
        raise MalformedMessage("not a NOTIFY request")
    return mode.read(message)


def notify_dialog_id(request: SipRequest) -> str:
    """The subscription dialog of a NOTIFY: its Call-ID, our tag (To), the notifier's
    (From)."""
    local = request.to_addr.tag or ""
    remote = request.from_addr.tag or ""
    return dialog_id(request.headers.get("Call-ID") or "", local, remote)


def _cseq(request: SipRequest) -> int | None:
    try:
        return request.cseq.number
    except MalformedMessage:
        return None


def _check_headers(request: SipRequest) -> None:
    event_text = request.headers.get("Event")
    if not event_text:
        raise BadEvent("NOTIFY without an Event header")
    event = Event.parse(event_text)
    if event.package.lower() != "reg":
        raise BadEvent(f"Event {event.package!r} is not the reg package")
    if request.body.strip():
        content_type = request.headers.get("Content-Type")
        if not content_type or not ContentType.parse(content_type).is_reginfo:
            raise UnsupportedMediaType(
                f"Content-Type {content_type or '(none)'} is not application/reginfo+xml")
