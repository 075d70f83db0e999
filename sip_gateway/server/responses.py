"""Responses to a request (RFC 3261 8.2.6): copied dialog headers, To tag, errors as Warnings.

A response carries every Via of the request in order and with the values as received,
the From, the To (with our tag added when it had none and the response is not a 100),
the Call-ID and the CSeq (8.2.6.2). An error is answered with the status it carries and
the standard reason phrase; its text goes into a `Warning: 399` (20.43), with the header
each status needs alongside: Min-Expires for 423, Allow for 405, Allow-Events for 489,
Accept for 415, Unsupported for 420, and Retry-After when the error gives one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from sip_gateway.errors import (
    BadEvent,
    BadExtension,
    IntervalTooBrief,
    MalformedMessage,
    MethodNotAllowed,
    PeerError,
    UnsupportedMediaType,
)
from sip_gateway.sip import Headers, NameAddr, SipRequest, SipResponse, header_key
from sip_gateway.sip.values import REGINFO

SERVER = "pua-reginfo"
WARN_CODE = 399  # miscellaneous warning (RFC 3261 20.43)
MAX_WARNING_TEXT = 200

REASON_PHRASES = {
    100: "Trying",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    481: "Call/Transaction Does Not Exist",
    489: "Bad Event",
    500: "Server Internal Error",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
}
# For a code outside the table: the name of its class (RFC 3261 7.2, 21).
CLASS_PHRASES = {1: "Provisional", 2: "Successful", 3: "Redirection", 4: "Request Failure",
                 5: "Server Failure", 6: "Global Failure"}

_COPIED = ("from", "to", "call-id", "cseq")
# Control characters (C0, DEL, C1), line/paragraph separators and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status) or CLASS_PHRASES.get(status // 100, "Unknown")


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A response to `request` (RFC 3261 8.2.6.2); the To tag defaults to to_tag_for()."""
    if body and not content_type:
        raise ValueError("a response body needs a content_type")
    lines: list[tuple[str, str, str]] = []
    copied: dict[str, str] = {}  # the first line of each (the parser allows only one)
    for key, _, value in request.headers.wire():
        if key == "via":
            lines.append(("via", "Via", value))
        elif key in _COPIED and key not in copied:
            copied[key] = value
    if (from_ := copied.get("from")) is not None:
        lines.append(("from", "From", from_))
    if (to := copied.get("to")) is not None:
        if status > 100 and _lacks_tag(to):
            to = f"{to};tag={to_tag or to_tag_for(request)}"
        lines.append(("to", "To", to))
    for name, key in (("Call-ID", "call-id"), ("CSeq", "cseq")):
        if (value := copied.get(key)) is not None:
            lines.append((key, name, value))
    response_headers = Headers._trusted(lines)
    for name, value in headers:  # what the caller adds is checked like any header
        response_headers.add(name, value)
    response_headers.extend_checked([("Server", SERVER)] + (
        [("Content-Type", content_type)] if content_type else []) + [
        ("Content-Length", str(len(body)))])
    if reason is None and status in REASON_PHRASES:  # a valid status and phrase
        return SipResponse.trusted(status, REASON_PHRASES[status], response_headers, body)
    return SipResponse(status, reason or reason_phrase(status), headers=response_headers,
                       body=body)


def response_for_error(request: SipRequest, error: PeerError,
                       to_tag: str | None = None) -> SipResponse:
    """The response a PeerError asks for, its text in a Warning (RFC 3261 20.43)."""
    status = error.sip_status
    extra = [("Warning", warning(str(error)))]
    if isinstance(error, IntervalTooBrief):
        extra.append(("Min-Expires", str(error.min_expires)))
    if isinstance(error, MethodNotAllowed) and error.allow:
        extra.append(("Allow", ", ".join(error.allow)))
    if isinstance(error, BadEvent):
        extra.append(("Allow-Events", "reg"))
    if isinstance(error, BadExtension):
        extra.append(("Unsupported", ", ".join(error.unsupported)))
    if isinstance(error, UnsupportedMediaType):
        extra.append(("Accept", REGINFO))
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int) and retry_after >= 0:
        extra.append(("Retry-After", str(retry_after)))
    return make_response(request, status, to_tag=to_tag, headers=extra)


def warning(text: str) -> str:
    """`399 pua-reginfo "text"`: controls removed, quotes escaped, at most 200 characters."""
    clean = " ".join(_UNSAFE.sub(" ", text).split())
    quoted = []
    length = 0
    for char in clean:
        piece = "\\" + char if char in '"\\' else char
        if length + len(piece) > MAX_WARNING_TEXT:
            break
        quoted.append(piece)
        length += len(piece)
    return f'{WARN_CODE} {SERVER} "{"".join(quoted)}"'


def to_tag_for(request: SipRequest) -> str:
    """Our To tag, the same for every response with this Call-ID and From tag."""
    try:
        from_tag = request.from_addr.tag or ""
    except MalformedMessage:
        from_tag = request.headers.get("From") or ""
    seed = f"{request.headers.get('Call-ID') or ''}\x00{from_tag}"
    return hashlib.blake2s(seed.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _lacks_tag(to: str) -> bool:
    try:
        return NameAddr.parse(to, "To").tag is None
    except MalformedMessage:
        return False  # an unreadable To is echoed as it came; a tag would not mend it
