"""Errors of the protocol edge: a peer's fault, carrying the SIP status to answer, or our
own misuse of a sans-IO machine (a bug here, never the peer's)."""

from domain import PuaReginfoError


class Misuse(PuaReginfoError):
    """Our own code drove a sans-IO machine against its contract (a bug; 500 if answered)."""


class PeerError(PuaReginfoError):
    """Something a peer sent that we refuse; `sip_status` is the response to send."""

    sip_status = 400


class MalformedMessage(PeerError):
    """A SIP message that cannot be parsed or lacks a mandatory header (400)."""


class MessageTooLarge(PeerError):
    """Headers or body above the configured caps (513 Message Too Large)."""

    sip_status = 513


class MalformedReginfo(PeerError):
    """A reginfo body that is not safe, well-formed, or valid RFC 3680 (400)."""


class BadEvent(PeerError):
    """An Event header other than `reg` (489 Bad Event, RFC 6665)."""

    sip_status = 489


class UnsupportedMediaType(PeerError):
    """A body that is not application/reginfo+xml (415)."""

    sip_status = 415


class NotAcceptable(PeerError):
    """An Accept header that admits no body we can send (406, RFC 6665 4.2.1.1)."""

    sip_status = 406


class UnknownSubscription(PeerError):
    """A NOTIFY outside every subscription we hold (481)."""

    sip_status = 481


class VersionNotSupported(MalformedMessage):
    """A well-formed start line with a SIP version other than 2.0 (505, RFC 3261 8.2.2)."""

    sip_status = 505


class UnsupportedUriScheme(PeerError):
    """A Request-URI scheme this server does not serve (416, RFC 3261 8.2.2.1)."""

    sip_status = 416


class BadExtension(PeerError):
    """A Require header naming extensions we lack (420, RFC 3261 8.2.2.3); `unsupported`
    goes in Unsupported."""

    sip_status = 420

    def __init__(self, unsupported: tuple[str, ...]) -> None:
        super().__init__(f"extensions not supported: {', '.join(unsupported)}")
        self.unsupported = tuple(unsupported)


class Forbidden(PeerError):
    """A request for a domain this registrar is not responsible for (403, RFC 3261 10.3)."""

    sip_status = 403


class Unauthorized(PeerError):
    """A request without acceptable digest credentials (401, RFC 3261 22.1): answered with
    a fresh challenge; `stale`: the credentials were right but their nonce is not usable
    any more (RFC 7616 3.3), `user`: whom the challenge is for (its algorithms)."""

    sip_status = 401

    def __init__(self, reason: str, stale: bool = False, user: str | None = None) -> None:
        super().__init__(reason)
        self.stale, self.user = stale, user


class NonceReused(Unauthorized):
    """A (nonce, nc) already used by another request: a replay (RFC 7616 5.4), 401."""


class IntervalTooBrief(PeerError):
    """A binding lifetime below our minimum (423, RFC 3261 10.3 step 7); sent as Min-Expires."""

    sip_status = 423

    def __init__(self, min_expires: int, reason: str | None = None) -> None:
        super().__init__(reason or f"expires below the minimum of {min_expires} s")
        self.min_expires = min_expires


class MethodNotAllowed(PeerError):
    """A method this service does not take here (405, RFC 3261 21.4.6); `allow` goes in Allow."""

    sip_status = 405

    def __init__(self, reason: str, allow: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.allow = tuple(allow)


class ServiceUnavailable(PeerError):
    """We cannot serve the request now (503, RFC 3261 21.5.4); `retry_after` in seconds;
    `cause` names why for the metrics: "store_down", "overload", "contention",
    "shutting_down", "serve_away", "not_ready" (an OPTIONS probe), "rate_limit" (a
    source over `[security] max_rate`)."""

    sip_status = 503

    def __init__(self, reason: str, retry_after: int | None = None,
                 cause: str = "unavailable") -> None:
        super().__init__(reason)
        self.retry_after, self.cause = retry_after, cause
