"""What the request handlers are told by the settings: the registrar's domains and expiry
limits, the trusted peers, the NOTIFY mode. serve and every UDP worker build the same
policy from the same settings."""

from __future__ import annotations

from infrastructure.settings import Settings
from sip_gateway.server.handlers import GatewayPolicy
from sip_gateway.server.notify_modes import NotifyMode, notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy


def configured_notify_mode(settings: Settings) -> NotifyMode:
    return notify_mode(settings.notify.mode,
                       accept_unsolicited=settings.notify.accept_unsolicited_notify)


def gateway_policy(settings: Settings) -> GatewayPolicy:
    return GatewayPolicy(registrar=registrar_policy(settings),
                         trusted=TrustedPeers(settings.security.trusted),
                         notify_mode=configured_notify_mode(settings),
                         notify_reply_code=settings.notify.reply_code)


def registrar_policy(settings: Settings) -> RegistrarPolicy:
    """The registrar's domains (default: the default domain, or any) and expiry limits."""
    registrar, default_domain = settings.registrar, settings.reginfo.default_domain
    domains = registrar.domains or ((default_domain,) if default_domain else ())
    return RegistrarPolicy(tuple(domains), registrar.min_expires, registrar.max_expires,
                           registrar.default_expires)
