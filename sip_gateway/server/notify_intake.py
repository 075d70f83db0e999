"""NOTIFY intake: a bare reginfo body or a whole SIP NOTIFY, checked and parsed.

In `rfc` mode a NOTIFY must carry `Event: reg` (else 489, RFC 6665 8.2.1) and, with a
body, `Content-Type: application/reginfo+xml` (else 415, RFC 3680 4.5); the body is parsed
strictly. `Subscription-State: terminated` ends the subscription after its final document
is applied (RFC 6665 4.1.3). In `kamailio` mode, like reginfo_handle_notify in 5.6, none of
these headers is looked at and the body is parsed leniently. The CLI (`handle-notify`) and
the gateway both come through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.reginfo import ReginfoDocument
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

_REQUEST_LINE = re.compile(rb"^[A-Za-z]+ \S+ SIP/2\.0\r?\n")


@dataclass(frozen=True)
class NotifyIntake:
    """What a NOTIFY brings: its document (None without body) and its dialog's fate."""

    document: ReginfoDocument | None
    dialog_id: str | None = None
    ended_reason: str | None = None
    cseq: int | None = None  # the NOTIFY's CSeq number (orders the dialog's NOTIFYs)


def is_sip_message(data: bytes) -> bool:
    return bool(_REQUEST_LINE.match(data.lstrip(b"\r\n")))


def intake_notify(data: bytes, mode: str) -> NotifyIntake:
    """Check and parse `data` (body or whole NOTIFY); raises a PeerError with its status."""
    if not is_sip_message(data):
        return NotifyIntake(_parse_body(data, mode))
    message = parse_message(data.lstrip(b"\r\n"))
    if not isinstance(message, SipRequest) or message.method != "NOTIFY":
        raise MalformedMessage("not a NOTIFY request")
    return intake_request(message, mode)


def intake_request(message: SipRequest, mode: str) -> NotifyIntake:
    """Check and parse a parsed NOTIFY request (the gateway's entry)."""
    if mode == "rfc":
        _check_rfc_headers(message)
    state_text = message.headers.get("Subscription-State")
    ended = None
    if mode == "rfc" and state_text:
        state = SubscriptionState.parse(state_text)
        if state.state == "terminated":
            ended = state.reason or "terminated"
    return NotifyIntake(_parse_body(message.body, mode), dialog_id(message), ended,
                        _cseq(message))


def dialog_id(message: SipRequest) -> str:
    """Our side of the subscription dialog: Call-ID, our tag (To), the notifier's (From)."""
    local = NameAddr.parse(message.headers.get("To") or "").tag or ""
    remote = NameAddr.parse(message.headers.get("From") or "").tag or ""
    return f"{message.headers.get('Call-ID')};local={local};remote={remote}"


def _cseq(message: SipRequest) -> int | None:
    try:
        return CSeq.parse(message.headers.get("CSeq") or "").number
    except MalformedMessage:
        return None


def _check_rfc_headers(message: SipRequest) -> None:
    event_text = message.headers.get("Event")
    if not event_text:
        raise BadEvent("NOTIFY without an Event header")
    event = Event.parse(event_text)
    if event.package.lower() != "reg":
        raise BadEvent(f"Event {event.package!r} is not the reg package")
    if message.body.strip():
        content_type = message.headers.get("Content-Type")
        if not content_type or not ContentType.parse(content_type).is_reginfo:
            raise UnsupportedMediaType(
                f"Content-Type {content_type or '(none)'} is not application/reginfo+xml")


def _parse_body(body: bytes, mode: str) -> ReginfoDocument | None:
    if not body.strip():
        return None
    return parse_reginfo(body) if mode == "rfc" else parse_reginfo_lenient(body)
