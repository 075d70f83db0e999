"""What the request handlers are told by the settings: the registrar's domains and expiry
limits, the trusted peers, the NOTIFY mode, the notifier role's lifetimes and access;
and the SIP core, the per-source limits. serve and every UDP worker build the same
policy from the same settings."""

from __future__ import annotations

from infrastructure.settings import Settings
from sip_gateway.server.handlers import GatewayPolicy
from sip_gateway.server.notify_modes import NotifyMode, notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.server.source_limits import SourceLimits
from sip_gateway.server.watch_access import WatcherAccess
from sip_gateway.server.watch_request import WatchPolicy


def configured_notify_mode(settings: Settings) -> NotifyMode:
    return notify_mode(settings.notify.mode,
                       accept_unsolicited=settings.notify.accept_unsolicited_notify)


def gateway_policy(settings: Settings) -> GatewayPolicy:
    registrar, trusted = registrar_policy(settings), TrustedPeers(settings.security.trusted)
    notifier = settings.notifier
    watching = access = None
    if notifier.enabled:
        watching = WatchPolicy(notifier.default_expires, notifier.min_expires,
                               notifier.max_expires)
        access = WatcherAccess.of(trusted, registrar, notifier.watch_own, notifier.peers)
    return GatewayPolicy(registrar=registrar, trusted=trusted,
                         notify_mode=configured_notify_mode(settings),
                         notify_reply_code=settings.notify.reply_code,
                         watching=watching, access=access)


def registrar_policy(settings: Settings) -> RegistrarPolicy:
    """The registrar's domains (default: the default domain, or any) and expiry limits."""
    registrar, default_domain = settings.registrar, settings.reginfo.default_domain
    domains = registrar.domains or ((default_domain,) if default_domain else ())
    return RegistrarPolicy(tuple(domains), registrar.min_expires, registrar.max_expires,
                           registrar.default_expires)


def source_limits(settings: Settings, share: int = 1) -> SourceLimits | None:
    """`[security] max_rate` per source outside the trusted networks (bursts of twice
    that), for one of `share` processes among which the kernel spreads a source's
    datagrams at random (the UDP workers): each takes its share of the rate."""
    rate = settings.security.max_rate
    if not rate:
        return None
    mine = rate / share
    return SourceLimits(mine, 2 * mine, TrustedPeers(settings.security.trusted).allows)
