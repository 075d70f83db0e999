"""Request handlers: REGISTER (RFC 3261 10.3), NOTIFY (RFC 3680, RFC 6665), SUBSCRIBE to
the reg event package (RFC 6665 4.2.1, RFC 3680 5), OPTIONS.

Each handler takes a request whose top Via is already stamped, talks to the application
only through the RegistrationPort, and returns the response plus the AoR to log. Every
response that reports a change is produced after the port returned, i.e. after commit.

With a DigestGuard (`[auth] realm`), every REGISTER authenticates, from any source (the
trusted networks no longer limit REGISTER: credentials do), and its user must own the
AoR (403); a SUBSCRIBE from outside the trusted networks (watch_own) too. NOTIFY stays
limited to the trusted networks. A nonce's use is admitted by the nonce counts before
anything changes (a replay gets 401).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain import PuaReginfoError
from sip_gateway.auth import DigestGuard, NonceUse
from sip_gateway.errors import (
    BadExtension,
    Forbidden,
    MethodNotAllowed,
    PeerError,
    ServiceUnavailable,
    Unauthorized,
    UnknownSubscription,
    UnsupportedUriScheme,
)
from domain.notify_rfc import NotifyResult
from sip_gateway.server.notify_modes import NotifyIntake, NotifyMode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.ports import RegistrationPort
from sip_gateway.server.registrar import RegistrarPolicy, read_register, register_ok
from sip_gateway.server.watch_access import WatcherAccess
from sip_gateway.server.watch_request import WatchPolicy, WatchRequest, read_subscribe
from sip_gateway.server.responses import make_response, response_for_error, to_tag_for, warning
from sip_gateway.sip import NameAddr, SipRequest, SipResponse
from sip_gateway.sip.values import REGINFO
from sip_gateway.tallies import RequestTallies
from sip_gateway.transport import Arrival

ALLOWED = ("REGISTER", "NOTIFY", "OPTIONS")
WATCHING = ("REGISTER", "SUBSCRIBE", "NOTIFY", "OPTIONS")  # with the notifier role on
NOT_READY_RETRY_AFTER = 5  # seconds, as for a REGISTER while the store is away
SCHEMES = ("sip", "sips", "tel")  # Request-URI schemes served (RFC 3261 8.2.2.1)
EXTENSIONS = ("path",)  # option tags a Require may name (RFC 3327; RFC 3261 8.2.2.3)


@dataclass(frozen=True)
class GatewayPolicy:
    registrar: RegistrarPolicy
    trusted: TrustedPeers
    notify_mode: NotifyMode
    notify_reply_code: int = 200
    watching: WatchPolicy | None = None  # the notifier role's lifetimes; None: off (405)
    access: WatcherAccess | None = None  # who may watch what


class WatchPort(Protocol):
    """The notifier role, as the SUBSCRIBE handler sees it."""

    async def watch(self, ask: WatchRequest, local_tag: str, arrival: Arrival,
                    peer: bool) -> None:
        """Record the subscription (new, refreshed or ended) and have it notified; raises
        UnknownWatcher (481) for a refresh of a dialog that has no subscription."""


class NonceAdmitter(Protocol):
    """The nonce counts of this serve (sip_gateway/auth/nonce_counts.py)."""

    async def admit(self, use: NonceUse) -> None:
        """Record a nonce's use; raises NonceReused (401) for a replay."""


class DialogWatcher(Protocol):
    """Our own SUBSCRIBE dialogs (the subscription keeper), as the NOTIFY handler sees them."""

    def claim(self, request: SipRequest) -> bool: ...
    def version_gap(self, request: SipRequest) -> None: ...


class NotifyApplier(Protocol):
    async def apply(self, intake: NotifyIntake, request: SipRequest | None) -> NotifyResult:
        """Apply a NOTIFY's document; `request` (None: known to be outside our dialogs)
        lets a SUBSCRIBE dialog of ours claim it."""


class ClaimingApplier:
    """A NOTIFY in one of our SUBSCRIBE dialogs is claimed by the watcher first (the
    dialog learns of it), then applied through the port; a version gap makes that
    dialog ask for full state (RFC 3680 4.4)."""

    def __init__(self, port: RegistrationPort, watcher: DialogWatcher | None = None) -> None:
        self.port, self.watcher = port, watcher

    async def apply(self, intake: NotifyIntake, request: SipRequest | None) -> NotifyResult:
        watcher = self.watcher
        claimed = watcher is not None and request is not None and watcher.claim(request)
        result = await self.port.notify(intake, claimed)
        if claimed and result.gap:
            watcher.version_gap(request)
        return result


class RequestHandler:
    """`notifies`: where NOTIFYs are applied (default: the port, claimed by `watcher`)."""

    def __init__(self, port: RegistrationPort, policy: GatewayPolicy, clock: Callable[[], float],
                 watcher: DialogWatcher | None = None, notifies: NotifyApplier | None = None,
                 watches: WatchPort | None = None,
                 not_ready: Callable[[], str | None] = lambda: None,
                 tallies: RequestTallies | None = None, guard: DigestGuard | None = None,
                 nonces: NonceAdmitter | None = None):
        self.port, self.policy, self.clock, self.watcher = port, policy, clock, watcher
        self.guard, self.nonces = guard, nonces  # both or neither
        self.tallies = tallies or RequestTallies()
        self.not_ready = not_ready  # why this node cannot take requests now (None: it can)
        self.notifies = notifies or ClaimingApplier(port, watcher)
        self.watches = watches if policy.watching is not None else None
        self.allowed = WATCHING if self.watches is not None else ALLOWED

    async def handle(self, request: SipRequest, arrival: Arrival) -> SipResponse:
        """The response to `request`."""
        try:
            _check_uas_headers(request)
            if request.method == "OPTIONS":
                return self._options(request)
            if request.method not in self.allowed:
                raise MethodNotAllowed(f"{request.method} is not served here", self.allowed)
            if request.method == "SUBSCRIBE":
                return await self._subscribe(request, arrival)
            if request.method == "REGISTER" and self.guard is not None:
                return await self._register(request, arrival)  # credentials, any source
            if not self.policy.trusted.allows(arrival.source[0]):
                raise Forbidden(f"{arrival.source[0]} is not a trusted peer")
            if request.method == "REGISTER":
                return await self._register(request, arrival)
            return await self._notify(request)
        except PuaReginfoError as error:
            if error.sip_status == 503:
                self.tallies.unavailable.add(getattr(error, "cause", "unavailable"))
            if request.method == "NOTIFY":
                self.tallies.notify_refused.add(_snake(type(error).__name__))
            return self._error(request, error)

    async def _register(self, request: SipRequest, arrival: Arrival) -> SipResponse:
        command = read_register(request, self.policy.registrar, source=arrival.source,
                                transport=arrival.transport, local=arrival.local)
        if self.guard is not None:
            await self._authorize(request, command.aor)
        bindings = await self.port.register(command.aor, command.request)
        return register_ok(request, bindings, self.clock(), to_tag=to_tag_for(request))

    async def _notify(self, request: SipRequest) -> SipResponse:
        intake = self.policy.notify_mode.read(request)
        result = await self.notifies.apply(intake, request)
        if result.unknown_subscription:
            raise UnknownSubscription(result.reason or "no subscription matches this dialog")
        self.tallies.notify_results.add(str(result.code))
        if result.gap:
            self.tallies.version_gaps.add()
        if result.code == -1:
            return make_response(request, 400, headers=[("Warning", warning(result.reason or ""))])
        return make_response(request, self.policy.notify_reply_code)

    async def _subscribe(self, request: SipRequest, arrival: Arrival) -> SipResponse:
        """Accept a reg subscription (RFC 6665 4.2.1): 200 with the granted Expires, our
        Contact and To tag; its NOTIFYs follow from the notifier."""
        ask = read_subscribe(request, self.policy.watching)
        peer = self.policy.access.check(ask.resource, ask.watcher, arrival.source[0])
        if self.guard is not None and not self.policy.trusted.allows(arrival.source[0]):
            await self._authorize(request, ask.resource)  # watch_own: its own AoR only
        local_tag = ask.local_tag or to_tag_for(request)
        await self.watches.watch(ask, local_tag, arrival, peer)
        host, port = arrival.local
        where = f"[{host}]" if ":" in host else host
        contact = f"<sip:reginfo@{where}:{port};transport={arrival.transport}>"
        return make_response(request, 200, to_tag=local_tag, headers=[
            ("Expires", str(ask.expires)), ("Contact", contact)])

    async def _authorize(self, request: SipRequest, aor: str) -> None:
        """RFC 3261 10.3 steps 3-4: the credentials' user, owner of `aor`, and a nonce
        use not seen before; raises Unauthorized (401), Forbidden (403) or 400."""
        identity = self.guard.authenticate(request, self.clock())
        if not self.guard.owns(identity.username, aor):
            raise Forbidden(f"user {identity.username} may not act on {aor}")
        await self.nonces.admit(identity.use)

    def _options(self, request: SipRequest) -> SipResponse:
        """200 with what we serve; 503 while requests would get 503 (the event store is
        away), so that a dispatcher probing with OPTIONS sends no traffic here meanwhile."""
        reason = self.not_ready()
        if reason is not None:
            raise ServiceUnavailable(f"not ready: {reason}", retry_after=NOT_READY_RETRY_AFTER,
                                     cause="not_ready")
        return make_response(request, 200, headers=[
            ("Allow", ", ".join(self.allowed)), ("Accept", REGINFO), ("Allow-Events", "reg")])

    def _error(self, request: SipRequest, error: PuaReginfoError) -> SipResponse:
        if isinstance(error, Unauthorized) and self.guard is not None:
            challenge = self.guard.challenge(error, request, self.clock())
            return make_response(request, 401, headers=[*challenge,
                                                        ("Warning", warning(str(error)))])
        if isinstance(error, PeerError):
            return response_for_error(request, error)
        return make_response(request, error.sip_status,
                             headers=[("Warning", warning(str(error)))])


def _check_uas_headers(request: SipRequest) -> None:
    """RFC 3261 8.2.2: a Request-URI scheme we serve (else 416) and no Require of an
    extension we lack (else 420 with Unsupported)."""
    scheme = request.uri.partition(":")[0].lower()
    if scheme not in SCHEMES:
        raise UnsupportedUriScheme(f"Request-URI scheme {scheme!r} is not served here")
    unsupported = tuple(tag for tag in request.headers.get_all("Require")
                        if tag.lower() not in EXTENSIONS)
    if unsupported:
        raise BadExtension(unsupported)


def _snake(name: str) -> str:
    """An error's class name as a metric label: MalformedReginfo -> malformed_reginfo."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def to_uri(request: SipRequest) -> str:
    """The To URI of a request, "-" when unreadable (the AoR of the request log line)."""
    try:
        return str(NameAddr.parse(request.headers.get("To") or "", "To").uri)
    except PuaReginfoError:
        return "-"
