"""The PUBLISH request of a publication plan (RFC 3903 4, RFC 3261 8.1.1) and its answer.

`build_publish` turns a `PublishPlan` into a request for the client transaction layer:
Request-URI and To are the resource, From is ours with a tag, the top Via carries the
branch and asks for rport (RFC 3581), then `Event: reg`, `Expires`, `SIP-If-Match` and the
reginfo body as the plan says. With an outbound proxy a loose `Route` goes first; the caller
sends to the route's address. `publish_response_fields` reads what `Publication.on_response`
needs from a response, treating a malformed value as absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from domain.errors import InvalidUri
from domain.uri import SipUri, parse_uri
from sip_gateway.errors import MalformedMessage, Misuse
from sip_gateway.sip.grammar import is_token
from sip_gateway.sip.headers import Headers
from sip_gateway.sip.message import SipRequest, SipResponse
from sip_gateway.sip.timers import MAGIC_COOKIE
from sip_gateway.sip.values import (
    MAX_CSEQ,
    MAX_DELTA_SECONDS,
    MAX_FORWARDS,
    REGINFO,
    VIA_TRANSPORTS,
    CSeq,
    ETag,
    Via,
    parse_delta_seconds,
)

EVENT_PACKAGE = "reg"  # RFC 3680 4.1

T = TypeVar("T")
_CALL_ID = re.compile(r"[^\s@<>\"]+(?:@[^\s@<>\"]+)?")  # word ["@" word], RFC 3261 25.1


class PublicationMisuse(Misuse):
    """Our own code broke the publication's contract (not a peer's fault, 500)."""


class PublishKind(Enum):
    """The four PUBLISH requests of RFC 3903 4.2-4.5."""

    INITIAL = "initial"  # body, no SIP-If-Match
    MODIFY = "modify"  # body and SIP-If-Match
    REFRESH = "refresh"  # SIP-If-Match, no body
    REMOVE = "remove"  # SIP-If-Match and Expires: 0


@dataclass(frozen=True)
class PublishPlan:
    """One PUBLISH to send: kind, Expires, body (initial/modify), SIP-If-Match (all but initial)."""

    kind: PublishKind
    expires: int
    body: bytes | None = None
    if_match: str | None = None

    def __post_init__(self) -> None:
        has_body = self.kind in (PublishKind.INITIAL, PublishKind.MODIFY)
        if has_body != bool(self.body):
            need = "needs a" if has_body else "has no"
            raise PublicationMisuse(f"a {self.kind.value} PUBLISH {need} body")
        if (self.kind is PublishKind.INITIAL) != (self.if_match is None):
            raise PublicationMisuse(f"SIP-If-Match is wrong for a {self.kind.value} PUBLISH")
        if self.if_match is not None and not is_token(self.if_match):
            raise PublicationMisuse(f"SIP-If-Match is not a token: {self.if_match!r}")
        low = 0 if self.kind is PublishKind.REMOVE else 1
        high = 0 if self.kind is PublishKind.REMOVE else MAX_DELTA_SECONDS
        if not isinstance(self.expires, int) or not low <= self.expires <= high:
            raise PublicationMisuse(f"Expires {self.expires!r} for a {self.kind.value} PUBLISH")


def build_publish(
    plan: PublishPlan,
    *,
    resource: str,
    from_uri: str,
    from_tag: str,
    call_id: str,
    cseq: int,
    branch: str,
    via_host: str,
    via_port: int,
    transport: str = "UDP",
    route: str | None = None,
) -> SipRequest:
    """The PUBLISH request of `plan` for `resource` (RFC 3903 4, RFC 3261 8.1.1)."""
    resource, from_uri = _uri(resource, "resource"), _uri(from_uri, "from_uri")
    if not is_token(from_tag) or not is_token(branch) or not branch.startswith(MAGIC_COOKIE):
        raise PublicationMisuse(f"bad from_tag or branch: {from_tag!r}, {branch!r}")
    if not isinstance(call_id, str) or _CALL_ID.fullmatch(call_id) is None:
        raise PublicationMisuse(f"bad call_id: {call_id!r}")
    if not isinstance(cseq, int) or not 0 <= cseq <= MAX_CSEQ:
        raise PublicationMisuse(f"CSeq number must be 0..{MAX_CSEQ}, got {cseq!r}")
    if transport.upper() not in VIA_TRANSPORTS:
        raise PublicationMisuse(f"unknown transport {transport!r}")
    via, top_via = _via(transport.upper(), via_host, via_port, branch)
    headers = Headers([("Via", via)])
    if route is not None:
        headers.add("Route", _route(route))
    for name, value in (
        ("Max-Forwards", str(MAX_FORWARDS)),
        ("To", f"<{resource}>"),
        ("From", f"<{from_uri}>;tag={from_tag}"),
        ("Call-ID", call_id),
        ("CSeq", str(CSeq(cseq, "PUBLISH"))),
        ("Event", EVENT_PACKAGE),
        ("Expires", str(plan.expires)),
    ):
        headers.add(name, value)
    if plan.if_match is not None:
        headers.add("SIP-If-Match", plan.if_match)
    if plan.body:
        headers.add("Content-Type", REGINFO)
    return SipRequest("PUBLISH", resource, headers=headers,
                      body=plan.body or b"").remember(top_via=top_via)


@dataclass(frozen=True)
class PublishResponseFields:
    """SIP-ETag, Expires and Min-Expires of a PUBLISH response, None when absent or bad."""

    etag: str | None
    expires: int | None
    min_expires: int | None


def publish_response_fields(response: SipResponse) -> PublishResponseFields:
    """What `Publication.on_response` reads from a response (RFC 3903 5, 11.3.1)."""
    headers = response.headers
    return PublishResponseFields(
        etag=_optional(headers, "SIP-ETag", lambda text: ETag.parse(text).value),
        expires=_optional(headers, "Expires", parse_delta_seconds),
        min_expires=_optional(
            headers, "Min-Expires", lambda text: parse_delta_seconds(text, "Min-Expires")),
    )


def _optional(headers: Headers, name: str, parse: Callable[[str], T]) -> T | None:
    text = headers.get(name)
    if text is None:
        return None
    try:
        return parse(text)
    except MalformedMessage:
        return None


def _uri(text: str, what: str) -> str:
    text = text.strip() if isinstance(text, str) else text
    if isinstance(text, str) and text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    try:
        parse_uri(text)
    except InvalidUri as error:
        raise PublicationMisuse(f"{what} is not a URI: {error}") from None
    return text


def _via(transport: str, host: str, port: int, branch: str) -> tuple[str, Via]:
    """The top Via's text, checked by parsing it back, and the parsed value."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise PublicationMisuse(f"via_port must be 1..65535, got {port!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    text = str(Via(transport, host, port, (("branch", branch), ("rport", None))))
    try:
        return text, Via.parse(text)
    except MalformedMessage as error:
        raise PublicationMisuse(f"bad via_host {host!r}: {error}") from None


def _route(route: str) -> str:
    """`<uri;lr>` for an outbound proxy (RFC 3261 8.1.2, 16.12 loose routing)."""
    uri = _uri(route, "route")
    parsed = parse_uri(uri)
    if not isinstance(parsed, SipUri) or parsed.headers:
        raise PublicationMisuse(f"route must be a SIP URI without headers: {route!r}")
    if parsed.param("lr") is None:
        uri += ";lr"
    return f"<{uri}>"
