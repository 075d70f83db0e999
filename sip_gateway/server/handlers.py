"""Request handlers: REGISTER (RFC 3261 10.3), NOTIFY (RFC 3680, RFC 6665), OPTIONS.

Each handler takes a request whose top Via is already stamped, talks to the application
only through the RegistrationPort, and returns the response plus the AoR to log. Every
response that reports a change is produced after the port returned, i.e. after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain import PuaReginfoError
from sip_gateway.errors import Forbidden, MethodNotAllowed, PeerError, UnknownSubscription
from sip_gateway.server.notify_modes import NotifyMode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.ports import RegistrationPort
from sip_gateway.server.registrar import RegistrarPolicy, read_register, register_ok
from sip_gateway.server.responses import make_response, response_for_error, to_tag_for, warning
from sip_gateway.sip import NameAddr, SipRequest, SipResponse
from sip_gateway.sip.values import REGINFO
from sip_gateway.transport import Arrival

ALLOWED = ("REGISTER", "NOTIFY", "OPTIONS")


@dataclass(frozen=True)
class GatewayPolicy:
    registrar: RegistrarPolicy
    trusted: TrustedPeers
    notify_mode: NotifyMode
    notify_reply_code: int = 200


class DialogWatcher(Protocol):
    """Our own SUBSCRIBE dialogs (the subscription keeper), as the NOTIFY handler sees them."""

    def claim(self, request: SipRequest) -> bool: ...
    def version_gap(self, request: SipRequest) -> None: ...


class RequestHandler:
    def __init__(self, port: RegistrationPort, policy: GatewayPolicy, clock: Callable[[], float],
                 watcher: DialogWatcher | None = None):
        self.port, self.policy, self.clock, self.watcher = port, policy, clock, watcher

    async def handle(self, request: SipRequest, arrival: Arrival) -> SipResponse:
        """The response to `request`."""
        try:
            if request.method == "OPTIONS":
                return self._options(request)
            if request.method not in ALLOWED:
                raise MethodNotAllowed(f"{request.method} is not served here", ALLOWED)
            if not self.policy.trusted.allows(arrival.source[0]):
                raise Forbidden(f"{arrival.source[0]} is not a trusted peer")
            if request.method == "REGISTER":
                return await self._register(request, arrival)
            return await self._notify(request)
        except PuaReginfoError as error:
            return self._error(request, error)

    async def _register(self, request: SipRequest, arrival: Arrival) -> SipResponse:
        command = read_register(request, self.policy.registrar, source=arrival.source,
                                transport=arrival.transport, local=arrival.local)
        bindings = await self.port.register(command.aor, command.request)
        return register_ok(request, bindings, self.clock(), to_tag=to_tag_for(request))

    async def _notify(self, request: SipRequest) -> SipResponse:
        intake = self.policy.notify_mode.read(request)
        claimed = self.watcher is not None and self.watcher.claim(request)
        result = await self.port.notify(intake, claimed)
        if claimed and result.gap:
            self.watcher.version_gap(request)
        if result.unknown_subscription:
            raise UnknownSubscription(result.reason or "no subscription matches this dialog")
        if result.code == -1:
            return make_response(request, 400, headers=[("Warning", warning(result.reason or ""))])
        return make_response(request, self.policy.notify_reply_code)

    def _options(self, request: SipRequest) -> SipResponse:
        return make_response(request, 200, headers=[
            ("Allow", ", ".join(ALLOWED)), ("Accept", REGINFO), ("Allow-Events", "reg")])

    def _error(self, request: SipRequest, error: PuaReginfoError) -> SipResponse:
        if isinstance(error, PeerError):
            return response_for_error(request, error)
        return make_response(request, error.sip_status,
                             headers=[("Warning", warning(str(error)))])


def to_uri(request: SipRequest) -> str:
    """The To URI of a request, "-" when unreadable (the AoR of the request log line)."""
    try:
        return str(NameAddr.parse(request.headers.get("To") or "", "To").uri)
    except PuaReginfoError:
        return "-"
